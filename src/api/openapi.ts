// GET /api/openapi.json: the OpenAPI 3.1 document of the REST API, built by zod-openapi from the
// very zod schemas the routes validate with (src/api/schemas.ts, schedules.ts, settings.ts), the
// response schemas of responses.ts, and the registry: each workflow's start form (the JSON Schema
// of its first page, as GET /api/workflows shows it) is the request body of its own
// `POST /api/processes/<workflow>`. Built once, at the first request (the registry is fixed once
// the API runs). test/openapi.test.ts walks the Express router against it.
import fs from 'node:fs';
import { Router } from 'express';
import { z } from 'zod';
import {
  createDocument,
  type CreateDocumentOptions,
  type ZodOpenApiObject,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathItemObject,
  type ZodOpenApiResponseObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import { PROCESS_STATUSES } from '../db/model.ts';
import { describeWorkflow, type Registry } from '../engine/registry.ts';
import {
  engineStatusSchema,
  errorSchema,
  healthSchema,
  processListSchema,
  processSchema,
  processSummarySchema,
  resumedAllSchema,
  scheduleSchema,
  startedSchema,
  stateSchema,
  statusCountsSchema,
  stepSchema,
  workerStatusSchema,
  workflowSchema,
} from './responses.ts';
import { scheduleBodySchema, scheduleNameSchema } from './schedules.ts';
import { callbackTokenSchema, listQuerySchema, noteSchema, processIdSchema } from './schemas.ts';
import { engineStatusBodySchema } from './settings.ts';
import { DOCS_ASSETS } from './docs.ts';

/** Every stable error `code` of the API and what it means. */
export const ERROR_CODES = {
  validation_error:
    'the body, the query or a form page does not validate (zod issues in `details`, with `page` for forms of several pages)',
  invalid_json: 'the body is not valid JSON',
  bad_request: 'the body cannot be read (an encoding or charset it does not know, or cut short)',
  invalid_id: 'the process id is not a uuid',
  invalid_text: 'the body or the query holds a NUL character or a lone surrogate',
  invalid_input: 'the input cannot be stored',
  state_too_large: 'the body is nested too deep, or the state would be too large to store',
  not_a_task: 'the process is a workflow: only tasks are deleted',
  invalid_schedule: 'the cron expression or the time zone cannot be read',
  unauthorized: 'no valid bearer token',
  forbidden:
    "the workflow's authorization hook, or the input step's assignee role, refuses this user",
  workflow_not_found: 'no workflow of this name is registered',
  process_not_found: 'no process with this id',
  callback_not_found:
    'no callback with this token for this process (tokens are compared in constant time)',
  schedule_not_found: 'no schedule of this name',
  route_not_found: 'no such route',
  not_resumable: 'the process is in a status that cannot be resumed (or is being resumed already)',
  workflow_changed:
    'the workflow definition changed under the process: its step is not where the process stopped',
  already_finished: 'the process is completed or aborted already',
  already_running: 'a resume of all tasks is running already',
  process_running: 'the task is running: abort it first',
  resource_locked: "another process holds one of the start's resource keys",
  not_awaiting_callback:
    'the process does not wait for this callback (answered already, timed out or aborted)',
  precondition_failed: "the workflow's run predicate refuses the start",
  payload_too_large: 'the body is larger than the route accepts',
  unsupported_media_type: 'the body is not application/json',
  form_incomplete:
    'pages of the form are missing: `details.page` and `details.form` (the JSON Schema of the next page)',
  too_many_requests: 'too many failed authentications from this address: try again in a minute',
  internal_error: 'an unexpected error (logged)',
  engine_paused: 'the engine is paused (global lock): nothing starts or resumes',
  not_repairable:
    'only the failed step of a failed or inconsistent_data process can be skipped or retried on a patched state',
  waiting_for_children:
    'the process waits for the child processes it started: it goes on when they have ended',
  database_unavailable: 'the database is unreachable: try again shortly',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
type Errors = Partial<Record<number, ErrorCode[]>>;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  412: 'Precondition failed',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Form incomplete',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service unavailable',
};

function addErrors(into: Errors, more: Errors): Errors {
  for (const [status, codes] of Object.entries(more)) {
    const list = (into[Number(status)] ??= []);
    for (const c of codes ?? []) if (!list.includes(c)) list.push(c);
  }
  return into;
}

/** Error responses many operations share: in the components, referenced by each. */
const SHARED_ERRORS: Record<string, { name: string; status: number; code: ErrorCode }> = {
  '401:unauthorized': { name: 'Unauthorized', status: 401, code: 'unauthorized' },
  '429:too_many_requests': { name: 'TooManyRequests', status: 429, code: 'too_many_requests' },
  '500:internal_error': { name: 'InternalError', status: 500, code: 'internal_error' },
  '503:database_unavailable': {
    name: 'DatabaseUnavailable',
    status: 503,
    code: 'database_unavailable',
  },
};

/** An error response: its `code` an enum of the codes it can carry, each explained. */
function errorResponse(status: number, codes: readonly ErrorCode[]): ZodOpenApiResponseObject {
  const list = codes.map((c) => `- \`${c}\`: ${ERROR_CODES[c]}`).join('\n');
  return {
    description: `${STATUS_TEXT[status] ?? 'Error'}:\n\n${list}`,
    content: {
      'application/json': { schema: errorSchema(codes as [ErrorCode, ...ErrorCode[]]) },
    },
  };
}

/** One response per error status (a shared one when it carries a single common code). */
function errorResponses(errors: Errors): ZodOpenApiResponsesObject {
  const out: ZodOpenApiResponsesObject = {};
  for (const [status, codes] of Object.entries(errors).sort(([a], [b]) => Number(a) - Number(b))) {
    if (!codes?.length) continue;
    const shared = codes.length === 1 ? SHARED_ERRORS[`${status}:${codes[0]}`] : undefined;
    out[status as `${1 | 2 | 3 | 4 | 5}${string}`] = shared
      ? { $ref: `#/components/responses/${shared.name}` }
      : errorResponse(Number(status), codes);
  }
  return out;
}

/**
 * Rendering rules: responses do not promise that no field will ever be added (zod would say
 * `additionalProperties: false` for every object it outputs; strict request bodies keep theirs),
 * and integers leave out the safe-integer bounds zod adds.
 */
const override: NonNullable<CreateDocumentOptions['override']> = ({
  jsonSchema,
  zodSchema,
  io,
}) => {
  const def = zodSchema._zod.def as { type: string; catchall?: unknown };
  if (io === 'output' && def.type === 'object' && def.catchall === undefined)
    delete jsonSchema.additionalProperties;
  if (jsonSchema.type === 'integer') {
    if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
    if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
  }
};

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
const noContent = (description: string) => ({ description });

interface OperationSpec {
  tag: string;
  operationId: string;
  summary: string;
  description?: string;
  /** false: open without a bearer token (health, callbacks, the docs). Default true. */
  auth?: boolean;
  /** Reads the database: 503 `database_unavailable` when it is unreachable. Default true. */
  database?: boolean;
  path?: z.ZodObject;
  query?: z.ZodType<unknown, Record<string, unknown>>;
  body?: { schema: z.ZodType | Record<string, unknown>; required?: boolean; description?: string };
  responses: ZodOpenApiResponsesObject;
  errors?: Errors;
}

/** An operation with the errors every route of its kind can answer besides its own. */
function operation(spec: OperationSpec): ZodOpenApiOperationObject {
  const auth = spec.auth ?? true;
  const errors: Errors = addErrors({}, spec.errors ?? {});
  // Checked before any route runs (src/api/hardening.ts): the query of every /api route, and bodies.
  addErrors(errors, { 400: ['invalid_text'] });
  if (spec.body)
    addErrors(errors, {
      400: ['invalid_json', 'bad_request', 'state_too_large'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
    });
  if (auth) addErrors(errors, { 401: ['unauthorized'], 429: ['too_many_requests'] });
  if (spec.database ?? true) addErrors(errors, { 503: ['database_unavailable'] });
  addErrors(errors, { 500: ['internal_error'] });
  return {
    tags: [spec.tag],
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(auth ? {} : { security: [] }),
    ...(spec.path || spec.query
      ? {
          requestParams: {
            ...(spec.path ? { path: spec.path } : {}),
            ...(spec.query ? { query: spec.query } : {}),
          },
        }
      : {}),
    ...(spec.body
      ? {
          requestBody: {
            required: spec.body.required ?? true,
            ...(spec.body.description ? { description: spec.body.description } : {}),
            content: { 'application/json': { schema: spec.body.schema } },
          },
        }
      : {}),
    responses: { ...spec.responses, ...errorResponses(errors) },
  };
}

// Path parameters: the schemas the routes validate with, as they are (their words are added to
// the document afterwards, see PARAMETER_WORDS).
const processIdParam = z.object({ id: processIdSchema });
const callbackParams = z.object({ id: processIdSchema, token: callbackTokenSchema });

/** The parameters' descriptions, by name (and path, for `name`). */
const PARAMETER_WORDS: Record<string, string | ((path: string) => string)> = {
  id: 'The process id (a uuid)',
  token: 'The callback token, as in the callback URL the step handed out',
  name: (path) =>
    path.startsWith('/api/workflows/') ? 'A registered workflow' : 'The schedule name',
  asset: 'A file of the docs page',
  status: `Comma-separated statuses, any of: ${PROCESS_STATUSES.join(', ')}`,
  workflow: 'Only processes of this workflow',
  isTask: '`true`: tasks only; `false`: workflows only',
  createdBy: 'Only processes started by this user',
  limit: 'Page size, 1 to 1000',
  offset: 'Items to skip',
  sort: '`startedAt`, `lastModifiedAt`, `status`, `workflowName` or `lastStep`, optionally with `:asc` or `:desc`',
};

/** Form input: one object (the first page), an array of page inputs, or nothing. */
const formBody = z
  .union([stateSchema, z.array(stateSchema)])
  .meta({ description: 'One object (the first page), or an array of page inputs' });

/**
 * A JSON Schema made to sit in the document: without `$schema`, its `$defs` moved into the
 * components under `prefix` and its references to them rewritten.
 */
function embedJsonSchema(
  schema: Record<string, unknown>,
  prefix: string,
  components: Record<string, Record<string, unknown>>,
): Record<string, unknown> {
  const { $defs, ...rest } = schema;
  delete rest.$schema;
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [
        k,
        k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/')
          ? `#/components/schemas/${prefix}.${x.slice('#/$defs/'.length)}`
          : rewrite(x),
      ]),
    );
  };
  for (const [name, def] of Object.entries(($defs ?? {}) as Record<string, unknown>))
    components[`${prefix}.${name}`] = rewrite(def) as Record<string, unknown>;
  return rewrite(rest) as Record<string, unknown>;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const INFO_DESCRIPTION = `A durable workflow orchestrator on Postgres.

**Errors** always have the shape \`{"error": {"code", "message", "details"?}}\`; each response below
lists the stable codes it can carry. A 4xx writes nothing. A path that is no route answers 404
\`route_not_found\`.

**Authentication**: every \`/api\` route takes \`Authorization: Bearer <token>\`, a static token
(\`API_TOKENS\`, \`API_TOKENS_FILE\`) or an OIDC access token (a JWT of \`OIDC_ISSUER\`), except the
health check, the callback URLs (their token is the credential), this document and the docs page.
Without any configured (loopback only, or \`AUTH=none\`) no token is needed. \`/metrics\` takes
\`METRICS_TOKEN\` when one is set.

**Starting a process**: each registered workflow has its own \`POST /api/processes/<workflow>\`,
whose body is its start form (tag *Start a process*).`;

/** The OpenAPI 3.1 document of this API with the workflows of `registry`. */
export function buildOpenApiDocument(registry: Registry): ReturnType<typeof createDocument> {
  const workflows = registry.list().map(describeWorkflow);
  const names = workflows.map((w) => w.name);
  // The route looks the name up in the registry: its values are the registered names.
  const workflowName = names.length > 0 ? z.enum(names as [string, ...string[]]) : z.string();
  const startForms: Record<string, Record<string, unknown>> = {};

  const paths: Record<string, ZodOpenApiPathItemObject> = {
    '/api/health': {
      get: operation({
        tag: 'Health',
        operationId: 'getHealth',
        summary: 'Health check',
        description: 'Answers 503 when the database is unreachable.',
        auth: false,
        database: false,
        responses: {
          200: json(healthSchema, 'The API and its database are up'),
          503: json(
            errorSchema(['database_unavailable']).extend({ status: z.literal('unavailable') }),
            `Service unavailable:\n\n- \`database_unavailable\`: ${ERROR_CODES.database_unavailable}`,
          ),
        },
      }),
    },
    '/api/workflows': {
      get: operation({
        tag: 'Workflows',
        operationId: 'listWorkflows',
        summary: 'The registered workflows',
        database: false,
        responses: { 200: json(z.array(workflowSchema), 'Each workflow with its start form') },
      }),
    },
    '/api/workflows/{name}': {
      get: operation({
        tag: 'Workflows',
        operationId: 'getWorkflow',
        summary: 'One workflow',
        database: false,
        path: z.object({ name: workflowName }),
        responses: { 200: json(workflowSchema, 'The workflow with its start form and steps') },
        errors: { 404: ['workflow_not_found'] },
      }),
    },
    '/api/processes': {
      get: operation({
        tag: 'Processes',
        operationId: 'listProcesses',
        summary: 'List processes',
        description: 'Filtered, sorted and paged; `total` counts all matches.',
        query: listQuerySchema,
        responses: { 200: json(processListSchema, 'One page of processes') },
        errors: { 400: ['validation_error'] },
      }),
    },
    '/api/processes/status-counts': {
      get: operation({
        tag: 'Processes',
        operationId: 'statusCounts',
        summary: 'Processes and tasks by status',
        responses: { 200: json(statusCountsSchema, 'Exact counts') },
      }),
    },
    '/api/processes/resume-all': {
      put: operation({
        tag: 'Processes',
        operationId: 'resumeAllTasks',
        summary: 'Resume every failed, waiting, api_unavailable and inconsistent_data task',
        description:
          "Tasks whose workflow's authorization hooks refuse the user are left as they are.",
        responses: { 200: json(resumedAllSchema, 'How many tasks were resumed') },
        errors: { 409: ['already_running'], 503: ['engine_paused'] },
      }),
    },
    '/api/processes/{id}': {
      get: operation({
        tag: 'Processes',
        operationId: 'getProcess',
        summary: 'One process with its steps',
        description:
          'A suspended process carries `form` (the JSON Schema of its input step, built from the current state) and `formPages`.',
        path: processIdParam,
        responses: { 200: json(processSchema, 'The process') },
        errors: { 400: ['invalid_id'], 404: ['process_not_found'] },
      }),
      delete: operation({
        tag: 'Processes',
        operationId: 'deleteTask',
        summary: 'Delete a task with its steps',
        path: processIdParam,
        responses: { 204: noContent('Deleted') },
        errors: {
          400: ['invalid_id', 'not_a_task'],
          403: ['forbidden'],
          404: ['process_not_found'],
          409: ['process_running'],
        },
      }),
      patch: operation({
        tag: 'Processes',
        operationId: 'setNote',
        summary: "Set or clear a process's note",
        path: processIdParam,
        body: { schema: noteSchema },
        responses: { 200: json(processSchema, 'The process') },
        errors: { 400: ['invalid_id', 'validation_error'], 404: ['process_not_found'] },
      }),
    },
    '/api/processes/{id}/resume': {
      put: operation({
        tag: 'Processes',
        operationId: 'resumeProcess',
        summary: 'Resume a process',
        description:
          'A suspended process takes its input step\'s form (see `form` of the process); a form of several pages takes an array of page inputs, and answers 422 `form_incomplete` with the next page while pages are missing. Any other resumable process (failed, waiting, …) is retried with an empty body; a failed or inconsistent_data one also with `{"state": {…}}`, a patch shallow-merged into its state before the retry (recorded in its steps).',
        path: processIdParam,
        body: {
          schema: formBody,
          required: false,
          description: "The input step's form input; empty for a retry",
        },
        responses: { 204: noContent('Resumed: the process continues') },
        errors: {
          400: ['invalid_id', 'validation_error', 'invalid_input'],
          403: ['forbidden'],
          404: ['process_not_found'],
          409: [
            'not_resumable',
            'workflow_changed',
            'workflow_not_found',
            'not_repairable',
            'waiting_for_children',
          ],
          422: ['form_incomplete'],
          503: ['engine_paused'],
        },
      }),
    },
    '/api/processes/{id}/skip': {
      put: operation({
        tag: 'Processes',
        operationId: 'skipStep',
        summary: 'Skip the failed step of a process',
        description:
          'For a failed or inconsistent_data process: its failed step is recorded `skipped` with the user, and the process continues after it (completed when it was the last step). Behind the workflow’s retry hooks.',
        path: processIdParam,
        responses: { 204: noContent('Skipped: the process continues') },
        errors: {
          400: ['invalid_id'],
          403: ['forbidden'],
          404: ['process_not_found'],
          409: ['not_repairable', 'workflow_changed', 'workflow_not_found'],
          503: ['engine_paused'],
        },
      }),
    },
    '/api/processes/{id}/abort': {
      put: operation({
        tag: 'Processes',
        operationId: 'abortProcess',
        summary: 'Abort a process',
        path: processIdParam,
        responses: { 204: noContent('Aborted') },
        errors: {
          400: ['invalid_id'],
          403: ['forbidden'],
          404: ['process_not_found'],
          409: ['already_finished'],
        },
      }),
    },
    '/api/processes/{id}/callback/{token}': {
      post: operation({
        tag: 'Callbacks',
        operationId: 'answerCallback',
        summary: 'Answer a callback step',
        description:
          "The URL a callback step handed out; its token is the credential (no bearer token). The body is stored under the step's result key (after the step's `validate`, whose refusal fails the process) and the process continues. At most one answer applies.",
        auth: false,
        path: callbackParams,
        body: { schema: z.unknown(), required: false, description: 'Any JSON' },
        responses: { 204: noContent('Answered: the process continues') },
        errors: {
          400: ['invalid_id', 'invalid_input'],
          404: ['callback_not_found'],
          409: ['not_awaiting_callback'],
          503: ['engine_paused'],
        },
      }),
    },
    '/api/processes/{id}/callback/{token}/progress': {
      post: operation({
        tag: 'Callbacks',
        operationId: 'callbackProgress',
        summary: 'Report progress of a pending callback',
        description:
          'Stored (the process shows it as `callback.progress`) and announced live; the process keeps waiting.',
        auth: false,
        path: callbackParams,
        body: { schema: z.unknown(), required: false, description: 'Any JSON' },
        responses: { 204: noContent('Stored') },
        errors: {
          400: ['invalid_id', 'invalid_input'],
          404: ['callback_not_found'],
          409: ['not_awaiting_callback'],
        },
      }),
    },
    '/api/settings/status': {
      get: operation({
        tag: 'Settings',
        operationId: 'getEngineStatus',
        summary: 'The engine status',
        responses: {
          200: json(engineStatusSchema, 'RUNNING, PAUSING (leases still held) or PAUSED'),
        },
      }),
      put: operation({
        tag: 'Settings',
        operationId: 'setGlobalLock',
        summary: 'Pause (globalLock: true) or unpause the engine',
        body: { schema: engineStatusBodySchema },
        responses: { 200: json(engineStatusSchema, 'The engine status after the change') },
        errors: { 400: ['validation_error'] },
      }),
    },
    '/api/settings/worker-status': {
      get: operation({
        tag: 'Settings',
        operationId: 'getWorkerStatus',
        summary: 'Executor, workers online and jobs per queue',
        responses: { 200: json(workerStatusSchema, 'The worker status') },
      }),
    },
    '/api/schedules': {
      get: operation({
        tag: 'Schedules',
        operationId: 'listSchedules',
        summary: 'The schedules, by name',
        responses: { 200: json(z.array(scheduleSchema), 'Each schedule with its next run') },
      }),
      post: operation({
        tag: 'Schedules',
        operationId: 'putSchedule',
        summary: 'Create or replace a schedule',
        description:
          'The workflow must exist and `input` must be its complete start form (one object or an array of pages). `cron`: five fields (minute hour day month weekday) or six with seconds first, read in `timezone`.',
        body: { schema: scheduleBodySchema },
        responses: {
          200: json(scheduleSchema, 'Replaced'),
          201: json(scheduleSchema, 'Created'),
        },
        errors: { 400: ['validation_error', 'invalid_schedule', 'workflow_not_found'] },
      }),
    },
    '/api/schedules/{name}': {
      delete: operation({
        tag: 'Schedules',
        operationId: 'deleteSchedule',
        summary: 'Delete a schedule',
        path: z.object({ name: scheduleNameSchema }),
        responses: { 204: noContent('Deleted') },
        errors: { 404: ['schedule_not_found'] },
      }),
    },
    '/metrics': {
      get: {
        tags: ['Metrics'],
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description:
          'Prometheus text format: steps, retries and recoveries of this instance; processes, engine status, queues and workers read from the database at each scrape.',
        security: [{}, { metricsToken: [] }],
        responses: {
          200: {
            description: 'The metrics',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...errorResponses({ 401: ['unauthorized'], 500: ['internal_error'] }),
        },
      },
    },
    '/api/openapi.json': {
      get: operation({
        tag: 'Docs',
        operationId: 'getOpenApi',
        summary: 'This document (OpenAPI 3.1)',
        auth: false,
        database: false,
        responses: {
          200: {
            description: 'The OpenAPI document',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
        },
      }),
    },
    '/api/docs': {
      get: operation({
        tag: 'Docs',
        operationId: 'getDocs',
        summary: 'The API docs page (Swagger UI, served locally)',
        auth: false,
        database: false,
        responses: {
          200: {
            description: 'The page; it loads this document',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
        },
      }),
    },
    '/api/docs/{asset}': {
      get: operation({
        tag: 'Docs',
        operationId: 'getDocsAsset',
        summary: "The docs page's scripts, styles and icons",
        auth: false,
        database: false,
        path: z.object({ asset: z.enum(DOCS_ASSETS) }),
        responses: { 200: { description: 'The file' } },
        errors: { 404: ['route_not_found'] },
      }),
    },
  };

  // One start operation per workflow, its body the workflow's start form.
  for (const w of workflows) {
    const form = embedJsonSchema(w.inputSchema, `StartForm.${w.name}`, startForms);
    startForms[`StartForm.${w.name}`] = form;
    const ref = { $ref: `#/components/schemas/StartForm.${w.name}` };
    const schema =
      w.inputPages > 1
        ? {
            anyOf: [ref, { type: 'array', items: { type: 'object' }, maxItems: w.inputPages }],
            description: `The first page, or an array of the ${w.inputPages} pages' inputs`,
          }
        : ref;
    const steps = w.steps.map((s) => `${s.name} (${s.kind})`).join(' → ');
    const path = `/api/processes/${w.name}`;
    paths[path] = {
      ...paths[path],
      post: operation({
        tag: 'Start a process',
        operationId: `start_${w.name}`,
        summary: `Start ${w.name}${w.isTask ? ' (task)' : ''}`,
        description: [
          w.description,
          `Target \`${w.target}\`. Steps: ${steps}.`,
          w.inputPages > 1
            ? `The start form has ${w.inputPages} pages: send them as an array; while pages are missing the answer is 422 \`form_incomplete\` with the next page's JSON Schema.`
            : 'The body is the start form (an array of this one page is accepted too).',
        ]
          .filter(Boolean)
          .join('\n\n'),
        body: { schema },
        responses: {
          201: {
            ...json(startedSchema, 'Started'),
            headers: z.object({
              Location: z.string().meta({ description: 'The process: /api/processes/{id}' }),
            }),
          },
        },
        errors: {
          400: ['validation_error', 'invalid_input'],
          403: ['forbidden'],
          404: ['workflow_not_found'],
          409: ['resource_locked'],
          412: ['precondition_failed'],
          422: ['form_incomplete'],
          503: ['engine_paused'],
        },
      }),
    };
  }

  const document: ZodOpenApiObject = {
    openapi: '3.1.0',
    info: {
      title: 'Workflow orchestrator API',
      version: packageVersion(),
      description: INFO_DESCRIPTION,
    },
    tags: [
      { name: 'Health' },
      { name: 'Workflows', description: 'The registered workflows and their start forms' },
      { name: 'Start a process', description: 'One operation per registered workflow' },
      { name: 'Processes', description: 'Processes and tasks: inspect, resume, abort, delete' },
      { name: 'Callbacks', description: 'The URLs callback steps hand out' },
      { name: 'Settings', description: 'Pause and unpause, worker status' },
      { name: 'Schedules', description: 'Cron schedules that start processes' },
      { name: 'Metrics' },
      { name: 'Docs' },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      responses: Object.fromEntries(
        Object.values(SHARED_ERRORS).map((e) => [e.name, errorResponse(e.status, [e.code])]),
      ),
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A static token (API_TOKENS, API_TOKENS_FILE) or an OIDC access token (JWT) of OIDC_ISSUER',
        },
        metricsToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'METRICS_TOKEN, when one is set',
        },
      },
      schemas: {
        Workflow: workflowSchema,
        ProcessSummary: processSummarySchema,
        Process: processSchema,
        Step: stepSchema,
        ProcessList: processListSchema,
        State: stateSchema,
        Schedule: scheduleSchema,
        EngineStatus: engineStatusSchema,
        WorkerStatus: workerStatusSchema,
        ...startForms,
      },
    },
  };
  const doc = createDocument(document, { override });
  for (const [path, item] of Object.entries(doc.paths ?? {}))
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const)
      for (const p of item[method]?.parameters ?? []) {
        const words = 'name' in p ? PARAMETER_WORDS[p.name] : undefined;
        if ('name' in p && words && !p.description)
          p.description = typeof words === 'function' ? words(path) : words;
      }
  return doc;
}

/** `GET /api/openapi.json`, built at the first request. */
export function openapiRouter(registry: Registry): Router {
  const router = Router();
  let doc: ReturnType<typeof buildOpenApiDocument> | undefined;
  router.get('/api/openapi.json', (_req, res) => {
    doc ??= buildOpenApiDocument(registry);
    res.json(doc);
  });
  return router;
}

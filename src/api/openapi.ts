// GET /api/openapi.json: the OpenAPI 3.1 document of the REST API, built by zod-openapi from the
// route list (routes.ts): each route's operation with the very zod schemas it validates with
// (src/api/schemas.ts, schedules.ts, settings.ts), the response schemas of responses.ts, and the
// registry: each workflow's start form (the JSON Schema of its first page, as GET /api/workflows
// shows it) is the request body of its own `POST /api/processes/<workflow>`. What a route's access
// and the checks before it (hardening.ts) can answer is added from its declaration.
// test/openapi.test.ts walks the Express router against it.
import fs from 'node:fs';
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
import { DEFAULT_FORM_TIMEOUT_MS, type FormOptions } from '../engine/forms.ts';
import { describeWorkflow, type Registry } from '../engine/registry.ts';
import { ERROR_CODES, type ErrorCode, type Errors } from './errors.ts';
import {
  engineStatusSchema,
  errorSchema,
  processListSchema,
  processSchema,
  processSummarySchema,
  scheduleSchema,
  stateSchema,
  stepSchema,
  workerStatusSchema,
  workflowSchema,
} from './responses.ts';
import { documentPath, type DocContext, type OperationDoc, type Route } from './route.ts';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  412: 'Precondition failed',
  413: 'Payload too large',
  415: 'Unsupported media type',
  421: 'Misdirected request',
  422: 'Form incomplete',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service unavailable',
  504: 'Timeout',
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
  '421:host_refused': { name: 'HostRefused', status: 421, code: 'host_refused' },
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

/** A route's operation with the errors its access and the checks before it can answer too. */
function operation(route: Route, spec: OperationDoc): ZodOpenApiOperationObject {
  const auth = route.auth ?? 'bearer';
  const errors: Errors = addErrors({}, spec.errors ?? {});
  // Checked before any route runs (src/api/hardening.ts): the query of every /api route, and bodies.
  if (route.path.startsWith('/api/')) {
    addErrors(errors, { 400: ['invalid_text'] });
    if (spec.body)
      addErrors(errors, {
        400: ['invalid_json', 'bad_request', 'state_too_large'],
        413: ['payload_too_large'],
        415: ['unsupported_media_type'],
      });
  }
  if (auth === 'bearer') addErrors(errors, { 401: ['unauthorized'], 429: ['too_many_requests'] });
  // Without authentication (src/api/site-guards.ts): any request for a name not the API's, and
  // writes from a page of another origin or that do not say they are JSON.
  addErrors(errors, { 421: ['host_refused'] });
  if (route.method !== 'get' && auth !== 'open')
    addErrors(errors, { 403: ['origin_refused'], 415: ['unsupported_media_type'] });
  if (auth === 'metricsToken') addErrors(errors, { 401: ['unauthorized'] });
  if (spec.database ?? true)
    addErrors(errors, {
      503: [
        'database_unavailable',
        'database_busy',
        ...(route.method === 'get' ? [] : (['database_full', 'database_locked'] as const)),
      ],
    });
  addErrors(errors, { 500: ['internal_error'] });
  return {
    tags: [spec.tag],
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(auth === 'open' ? { security: [] } : {}),
    ...(auth === 'metricsToken' ? { security: [{}, { metricsToken: [] }] } : {}),
    ...(spec.params || spec.query
      ? {
          requestParams: {
            ...(spec.params ? { path: spec.params } : {}),
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

/**
 * The OpenAPI 3.1 document of `routes` with the workflows of `registry` (their start forms built
 * within `forms.timeoutMs`).
 */
export async function buildOpenApiDocument(
  routes: readonly Route[],
  registry: Registry,
  forms: FormOptions = { timeoutMs: DEFAULT_FORM_TIMEOUT_MS },
): Promise<ReturnType<typeof createDocument>> {
  const workflows = await Promise.all(registry.list().map((w) => describeWorkflow(w, forms)));
  const d: DocContext = { workflows, schemas: {} };
  const paths: Record<string, ZodOpenApiPathItemObject> = {};
  const add = (path: string, route: Route, spec: OperationDoc) =>
    ((paths[path] ??= {})[route.method] = operation(route, spec));
  for (const r of routes)
    if (!('perWorkflow' in r.doc))
      add(documentPath(r.path), r, typeof r.doc === 'function' ? r.doc(d) : r.doc);
  // Then the operations documented once per workflow, its name in place of the route's parameter.
  for (const r of routes)
    if ('perWorkflow' in r.doc)
      for (const w of d.workflows) add(r.path.replace(/:\w+/, w.name), r, r.doc.perWorkflow(w, d));

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
        ...d.schemas,
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

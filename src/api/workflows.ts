// The registered workflows (`GET /api/workflows`, `GET /api/workflows/:name`) and the start of a
// process (`POST /api/processes/:workflow`): each workflow's start form (the JSON Schema of its
// first page, as GET /api/workflows shows it) is the request body of its own start operation in
// the document.
import { z } from 'zod';
import { actorOf } from './auth.ts';
import { INPUT_BODY_LIMIT } from './hardening.ts';
import { startedSchema, workflowSchema } from './responses.ts';
import {
  json,
  type DocContext,
  type OperationDoc,
  type Route,
  type WorkflowDescription,
} from './route.ts';

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

/** The start operation of `w`, its body the workflow's start form (added to the components). */
function startOperation(w: WorkflowDescription, d: DocContext): OperationDoc {
  const form = embedJsonSchema(w.inputSchema, `StartForm.${w.name}`, d.schemas);
  d.schemas[`StartForm.${w.name}`] = form;
  const ref = { $ref: `#/components/schemas/StartForm.${w.name}` };
  const schema =
    w.inputPages > 1
      ? {
          anyOf: [ref, { type: 'array', items: { type: 'object' }, maxItems: w.inputPages }],
          description: `The first page, or an array of the ${w.inputPages} pages' inputs`,
        }
      : ref;
  const steps = w.steps.map((s) => `${s.name} (${s.kind})`).join(' → ');
  return {
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
      504: ['form_timeout'],
    },
  };
}

export const listWorkflows: Route = {
  method: 'get',
  path: '/api/workflows',
  doc: {
    tag: 'Workflows',
    operationId: 'listWorkflows',
    summary: 'The registered workflows',
    database: false,
    responses: { 200: json(z.array(workflowSchema), 'Each workflow with its start form') },
    // The first page of a start form built by a function: a lookup that fails, or is slow.
    errors: { 400: ['validation_error'], 504: ['form_timeout'] },
  },
  handler:
    ({ engine }) =>
    async (_req, res) => {
      res.json(await engine.describeWorkflows());
    },
};

export const getWorkflow: Route = {
  method: 'get',
  path: '/api/workflows/:name',
  doc: ({ workflows }) => {
    const names = workflows.map((w) => w.name);
    return {
      tag: 'Workflows',
      operationId: 'getWorkflow',
      summary: 'One workflow',
      database: false,
      // The route looks the name up in the registry: its values are the registered names.
      params: z.object({
        name: names.length > 0 ? z.enum(names as [string, ...string[]]) : z.string(),
      }),
      responses: { 200: json(workflowSchema, 'The workflow with its start form and steps') },
      errors: {
        400: ['validation_error'],
        404: ['workflow_not_found'],
        504: ['form_timeout'],
      },
    };
  },
  handler:
    ({ engine }) =>
    async (req, res) => {
      res.json(await engine.describeWorkflow(String(req.params.name)));
    },
};

export const startProcess: Route = {
  method: 'post',
  path: '/api/processes/:workflow',
  bodyLimit: INPUT_BODY_LIMIT,
  doc: { perWorkflow: startOperation },
  handler:
    ({ engine }) =>
    async (req, res) => {
      const { id } = await engine.startProcess(String(req.params.workflow), req.body, actorOf(req));
      res.status(201).location(`/api/processes/${id}`).json({ id });
    },
};

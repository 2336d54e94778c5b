// The REST API's response bodies as zod schemas. They document (src/api/openapi.ts turns them
// into the OpenAPI document) and the OpenAPI test parses real responses with them, so a field
// added to or dropped from a response without its schema fails there.
import { z } from 'zod';
import { PROCESS_STATUSES, STEP_STATUSES, TARGETS } from '../db/model.ts';

/** Dates leave the API as ISO 8601 strings (`Date#toJSON`). */
const dateTime = () =>
  z.string().meta({ format: 'date-time', example: '2025-01-31T12:00:00.000Z' });
const nullableString = () => z.string().nullable();

export const processStatusSchema = z.enum(PROCESS_STATUSES);
export const stepStatusSchema = z.enum(STEP_STATUSES);

/** A process state, a step's state or its delta: a JSON object. */
export const stateSchema = z
  .record(z.string(), z.unknown())
  .meta({ description: 'A JSON object: the state the steps read and extend' });

/** A JSON Schema (draft 2020-12): a form page, as the live view and clients render it. */
export const jsonSchemaSchema = z
  .record(z.string(), z.unknown())
  .meta({ description: 'A JSON Schema (draft 2020-12)' });

export const healthSchema = z.object({ status: z.literal('ok') });

export const workflowSchema = z.object({
  name: z.string(),
  target: z.enum(TARGETS),
  isTask: z.boolean(),
  description: z.string(),
  inputSchema: jsonSchemaSchema.meta({
    description: "The JSON Schema of the start form's first page",
  }),
  inputPages: z.int().min(1).meta({ description: 'Pages of the start form' }),
  steps: z.array(
    z.object({
      name: z.string(),
      kind: z.enum(['step', 'retry', 'input', 'callback', 'sleep', 'children']),
      conditional: z.boolean(),
      group: nullableString(),
    }),
  ),
});

/** A process as the list shows it (no state, no steps). */
export const processSummarySchema = z.object({
  id: z.uuid(),
  workflowName: z.string(),
  status: processStatusSchema,
  lastStep: nullableString(),
  stepIndex: z.int(),
  attempt: z.int(),
  isTask: z.boolean(),
  target: z.enum(TARGETS),
  assignee: nullableString(),
  createdBy: nullableString(),
  failedReason: nullableString(),
  traceback: nullableString(),
  note: nullableString(),
  startedAt: dateTime(),
  lastModifiedAt: dateTime(),
  leaseOwner: nullableString(),
  leaseExpiresAt: dateTime().nullable(),
  retryAt: dateTime()
    .nullable()
    .meta({ description: '`waiting`: when the automatic retry (or a sleep) is due' }),
  parentId: z
    .uuid()
    .nullable()
    .meta({ description: 'The process that started this one (subProcesses), if any' }),
  workflowVersion: z
    .string()
    .nullable()
    .meta({ description: 'The version of its workflow it started on (`workflow({ version })`)' }),
});

export const stepSchema = z.object({
  id: z.int(),
  stepIndex: z.int(),
  name: z.string(),
  status: stepStatusSchema,
  state: stateSchema
    .optional()
    .meta({ description: 'The state after this step (absent with `states=false`)' }),
  stateDelta: stateSchema
    .optional()
    .meta({ description: 'What this step changed in the state (absent with `states=false`)' }),
  stateSize: z
    .int()
    .optional()
    .meta({ description: "`states=false`: the stored state's size in bytes (compressed)" }),
  error: z.unknown().meta({ description: 'The error of a failed step, or null' }),
  startedAt: dateTime(),
  completedAt: dateTime(),
  retries: z.int(),
  createdBy: nullableString(),
  group: nullableString(),
});

export const processSchema = processSummarySchema.extend({
  currentState: stateSchema
    .optional()
    .meta({ description: 'The state after the last step (absent with `states=false`)' }),
  steps: z.array(stepSchema),
  form: jsonSchemaSchema
    .optional()
    .meta({ description: "`suspended`: the JSON Schema of the input step's first page" }),
  formPages: z.int().min(1).optional().meta({ description: "`suspended`: the form's pages" }),
  formError: z
    .object({ code: z.enum(['form_timeout', 'validation_error']), message: z.string() })
    .optional()
    .meta({
      description:
        '`suspended`, when the form cannot be built now (a lookup slower than FORM_TIMEOUT_MS, or failing): why; `form` is then absent',
    }),
  callback: z
    .object({
      status: z.enum(['pending', 'done', 'expired', 'cancelled']),
      path: z.string(),
      url: z
        .string()
        .optional()
        .meta({ description: 'The callback URL the step gave out (`callbackUrl` of the state)' }),
      createdAt: dateTime(),
      expiresAt: dateTime().nullable(),
      resolvedAt: dateTime().nullable(),
      progress: z.unknown(),
      progressAt: dateTime().nullable(),
    })
    .optional()
    .meta({ description: 'The latest callback, when the process has had one' }),
  locks: z
    .object({ held: z.array(z.string()), waitingFor: z.array(z.string()) })
    .optional()
    .meta({ description: 'Workflows with resource keys: the keys held and waited for' }),
  children: z
    .array(
      z.object({
        id: z.uuid(),
        workflow: z.string(),
        status: processStatusSchema,
        parentStep: z.int(),
      }),
    )
    .optional()
    .meta({ description: 'Workflows with subProcesses steps: the children started, by step' }),
});

/** `GET /api/processes/:id/state`: one step's state (the current state without `step`). */
export const stepStateSchema = z.object({
  stepId: z.int().nullable().meta({ description: 'The step row, or null for the current state' }),
  state: stateSchema,
  stateDelta: stateSchema
    .nullable()
    .meta({ description: 'What the step changed (null for the current state)' }),
});

export const processListSchema = z.object({
  items: z.array(processSummarySchema),
  total: z.int().meta({
    description:
      'Processes matching the filters (all pages); with `totalCapped`, at least this many (a search or filter counted row by row stops at 10,000)',
  }),
  totalCapped: z.boolean().meta({ description: 'Whether `total` is a lower bound' }),
});

const countsByStatus = z
  .record(z.string(), z.int())
  .meta({ description: 'Count by status; statuses without any are left out' });

export const statusCountsSchema = z.object({
  processCounts: countsByStatus,
  taskCounts: countsByStatus,
});

export const startedSchema = z.object({ id: z.uuid() });
export const resumedAllSchema = z.object({
  count: z.int().meta({ description: 'Tasks resumed' }),
});

export const engineStatusSchema = z.object({
  globalLock: z.boolean(),
  runningProcesses: z.int(),
  engineStatus: z.enum(['RUNNING', 'PAUSING', 'PAUSED']),
});

export const workerStatusSchema = z.object({
  executor: z.enum(['threadpool', 'worker']),
  workersOnline: z.int(),
  workers: z.array(
    z.object({
      id: z.string(),
      hostname: z.string(),
      pid: z.int(),
      queues: z.array(z.string()),
      concurrency: z.int(),
      startedAt: dateTime(),
      heartbeatAt: dateTime(),
    }),
  ),
  queues: z.array(z.object({ name: z.string(), queued: z.int(), active: z.int() })),
});

export const scheduleSchema = z.object({
  name: z.string(),
  workflow: z.string(),
  cron: z.string(),
  timezone: z.string(),
  input: z.union([stateSchema, z.array(stateSchema)]),
  overlap: z.boolean(),
  nextRunAt: dateTime().nullable(),
  createdAt: dateTime(),
  updatedAt: dateTime(),
});

/** The one error shape; `codes` narrows `code` to those a response can carry. */
export function errorSchema(codes: readonly [string, ...string[]]) {
  return z.object({
    error: z.object({
      code: z.enum(codes),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  });
}

import type { Request } from 'express';
import { z } from 'zod';
import { SORT_COLUMNS, type ListQuery, type SortField } from '../db/process-list.ts';
import { ValidationError } from '../engine/errors.ts';
import { PROCESS_STATUSES } from '../engine/types.ts';

export const processIdSchema = z.uuid({ message: 'must be a uuid' });

/** A callback token's shape: 43 base64url characters (anything else is no callback's token). */
export const callbackTokenSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

const sortFields = Object.keys(SORT_COLUMNS) as [SortField, ...SortField[]];

/** `PATCH /api/processes/:id`: a note of up to 10,000 characters, or null to clear it. */
export const noteSchema = z.object({ note: z.string().max(10_000).nullable() }).strict();

/** `GET /api/processes` query: `status` may list several, comma-separated. */
export const listQuerySchema = z
  .object({
    status: z
      .string()
      .transform((s) => s.split(',').filter(Boolean))
      .pipe(z.array(z.enum(PROCESS_STATUSES)))
      .optional(),
    workflow: z.string().min(1).optional(),
    isTask: z
      .enum(['true', 'false'])
      .transform((v) => v === 'true')
      .optional(),
    createdBy: z.string().min(1).optional(),
    assignee: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Processes suspended at an input step assigned to this role' }),
    startedAfter: z.coerce
      .date()
      .optional()
      .meta({ description: 'Started at or after this time (ISO 8601)' }),
    startedBefore: z.coerce
      .date()
      .optional()
      .meta({ description: 'Started before this time (ISO 8601)' }),
    topLevel: z
      .enum(['true', 'false'])
      .transform((v) => v === 'true')
      .optional()
      .meta({ description: '`true`: child processes left out (each shows under its parent)' }),
    search: z.string().max(200).optional().meta({
      description:
        'One text matched against an id prefix (4 or more hex digits), a workflow name, a creator, the words of a note, and the string values of the current state (exact); any of them matches',
    }),
    limit: z.coerce.number().int().min(1).max(1000).default(50),
    offset: z.coerce.number().int().min(0).default(0),
    /** `field` or `field:asc|desc`; default `startedAt:desc`. */
    sort: z
      .string()
      .regex(
        new RegExp(`^(${sortFields.join('|')})(:(asc|desc))?$`),
        `must be one of ${sortFields.join(', ')}, optionally with :asc or :desc`,
      )
      .default('startedAt:desc'),
  })
  .strict()
  .transform(({ sort, ...rest }): ListQuery => {
    const [field, order] = sort.split(':') as [SortField, 'asc' | 'desc' | undefined];
    return { ...rest, sort: field, order: order ?? 'desc' };
  });

/** Parses `input` or throws a 400 `code` error carrying the zod issues. */
export function parseOr<T extends z.ZodType>(
  schema: T,
  input: unknown,
  code: string,
  message: string,
): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) {
    throw new ValidationError(code, message, {
      details: r.error.issues.map((i) => ({ path: i.path, message: i.message, code: i.code })),
    });
  }
  return r.data;
}

/** The `:id` of a request: a process id, or 400 `invalid_id`. */
export function processId(req: Request): string {
  return parseOr(
    processIdSchema,
    req.params.id,
    'invalid_id',
    `Process id ${JSON.stringify(req.params.id)} is not a uuid`,
  );
}

/** `GET /api/processes/:id` query: `states=false` leaves the states out (steps alone). */
export const processViewQuerySchema = z.object({
  states: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true')
    .meta({
      description:
        '`false`: the steps without `state` and `stateDelta`, and no `currentState` (read one with GET /api/processes/{id}/state)',
    }),
});

/** `GET /api/processes/:id/state` query: a step row's id, or none for the current state. */
export const stepStateQuerySchema = z
  .object({
    step: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().meta({
      description: "A step row's `id` (from the process's `steps`); none: the current state",
    }),
  })
  .strict();

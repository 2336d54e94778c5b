// Schedules: `GET/POST /api/schedules`, `DELETE /api/schedules/:name`.
import { z } from 'zod';
import type { Registry } from '../engine/registry.ts';
import {
  NotFoundError,
  OrchestratorError,
  TimeoutError,
  ValidationError,
} from '../engine/errors.ts';
import { parseForm, type FormOptions } from '../engine/forms.ts';
import type { Scheduler } from '../executors/scheduler.ts';
import { scheduleSchema } from './responses.ts';
import { json, noContent, type Route } from './route.ts';
import { parseOr } from './schemas.ts';

export const scheduleNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lower-case letters, digits, _ and -, up to 100');

export const scheduleBodySchema = z
  .object({
    name: scheduleNameSchema,
    workflow: z.string().min(1).max(200),
    /** Five fields (minute hour day month weekday), or six with seconds first. */
    cron: z.string().min(1).max(200),
    timezone: z.string().min(1).max(100).default('UTC'),
    /** The start form's input: one object, or an array of pages. */
    input: z
      .union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))])
      .default({}),
    overlap: z.boolean().default(true),
  })
  .strict();

export type ScheduleBody = z.output<typeof scheduleBodySchema>;

/**
 * Checks a schedule against the workflows: the workflow exists, its input validates, the cron and
 * time zone can be read. Throws 400 with a stable code otherwise, and 504 `form_timeout` when the
 * start form's lookups take longer than `forms.timeoutMs`.
 */
export async function checkSchedule(
  body: ScheduleBody,
  registry: Registry,
  scheduler: Scheduler,
  forms: FormOptions,
): Promise<void> {
  const def = registry.get(body.workflow);
  if (!def)
    throw new ValidationError(
      'workflow_not_found',
      `No workflow named ${JSON.stringify(body.workflow)}`,
    );
  try {
    scheduler.nextRun(body.cron, body.timezone);
  } catch (err) {
    throw new ValidationError(
      'invalid_schedule',
      `Cron ${JSON.stringify(body.cron)} in time zone ${JSON.stringify(body.timezone)}: ${(err as Error).message}`,
    );
  }
  try {
    await parseForm(def.input, body.input, {}, `workflow ${def.name}`, forms);
  } catch (err) {
    // A schedule's input must be complete: a missing page is a 400 like any invalid input.
    if (err instanceof OrchestratorError && !(err instanceof TimeoutError))
      throw new ValidationError('validation_error', err.message, { details: err.details });
    throw err;
  }
}

export const scheduleRoutes: Route[] = [
  {
    method: 'get',
    path: '/api/schedules',
    doc: {
      tag: 'Schedules',
      operationId: 'listSchedules',
      summary: 'The schedules, by name',
      responses: { 200: json(z.array(scheduleSchema), 'Each schedule with its next run') },
    },
    handler:
      ({ scheduler }) =>
      async (_req, res) => {
        const rows = await scheduler.list();
        res.json(rows.sort((a, b) => a.name.localeCompare(b.name)));
      },
  },
  {
    method: 'post',
    path: '/api/schedules',
    doc: {
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
      errors: {
        400: ['validation_error', 'invalid_schedule', 'workflow_not_found'],
        504: ['form_timeout'],
      },
    },
    handler:
      ({ scheduler, engine }) =>
      async (req, res) => {
        const body = parseOr(scheduleBodySchema, req.body, 'validation_error', 'Invalid schedule');
        await checkSchedule(body, engine.registry, scheduler, engine.forms);
        const outcome = await scheduler.put(body);
        res.status(outcome === 'created' ? 201 : 200).json(await scheduler.get(body.name));
      },
  },
  {
    method: 'delete',
    path: '/api/schedules/:name',
    doc: {
      tag: 'Schedules',
      operationId: 'deleteSchedule',
      summary: 'Delete a schedule',
      params: z.object({ name: scheduleNameSchema }),
      responses: { 204: noContent('Deleted') },
      errors: { 404: ['schedule_not_found'] },
    },
    handler:
      ({ scheduler }) =>
      async (req, res) => {
        const name = String(req.params.name);
        if (!(await scheduler.remove(name)))
          throw new NotFoundError(
            'schedule_not_found',
            `No schedule named ${JSON.stringify(name)}`,
          );
        res.status(204).end();
      },
  },
];

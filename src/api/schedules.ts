// Schedules: `GET/POST /api/schedules`, `DELETE /api/schedules/:name`.
import { Router } from 'express';
import { z } from 'zod';
import type { Registry } from '../engine/registry.ts';
import { NotFoundError, OrchestratorError, ValidationError } from '../engine/errors.ts';
import { parseForm } from '../engine/forms.ts';
import type { Scheduler } from '../executors/scheduler.ts';
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
 * time zone can be read. Throws 400 with a stable code otherwise.
 */
export function checkSchedule(body: ScheduleBody, registry: Registry, scheduler: Scheduler): void {
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
    parseForm(def.input, body.input, {}, `workflow ${def.name}`);
  } catch (err) {
    // A schedule's input must be complete: a missing page is a 400 like any invalid input.
    if (err instanceof OrchestratorError)
      throw new ValidationError('validation_error', err.message, { details: err.details });
    throw err;
  }
}

export function schedulesRouter(scheduler: Scheduler, registry: Registry): Router {
  const router = Router();
  router.get('/api/schedules', async (_req, res) => {
    const rows = await scheduler.list();
    res.json(rows.sort((a, b) => a.name.localeCompare(b.name)));
  });
  router.post('/api/schedules', async (req, res) => {
    const body = parseOr(scheduleBodySchema, req.body, 'validation_error', 'Invalid schedule');
    checkSchedule(body, registry, scheduler);
    const outcome = await scheduler.put(body);
    res.status(outcome === 'created' ? 201 : 200).json(await scheduler.get(body.name));
  });
  router.delete('/api/schedules/:name', async (req, res) => {
    const name = String(req.params.name);
    if (!(await scheduler.remove(name)))
      throw new NotFoundError('schedule_not_found', `No schedule named ${JSON.stringify(name)}`);
    res.status(204).end();
  });
  return router;
}

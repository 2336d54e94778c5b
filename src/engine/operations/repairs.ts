// Repairs of a stopped process: a retry of its step (on a patched state, for a failed one) and
// the skip of a failed step.
import { z } from 'zod';
import type { Queryable } from '../../db/pool.ts';
import { REPAIRABLE_STATUSES, waitsForChildren } from '../../db/model.ts';
import { markResumed, patchAndResume, skipFailedStep } from '../../db/resumes.ts';
import type { Actor } from '../actor.ts';
import { dispatchOf, type Dispatch } from '../dispatch.ts';
import type { StepDef, WorkflowDefinition } from '../dsl.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { isIn } from '../types.ts';
import {
  asEvents,
  checkHook,
  hookProcess,
  workflowChanged,
  type EngineContext,
  type ProcessRead,
} from './context.ts';

/** A resume, checked so far: the process as read, its workflow, and the step it stands at. */
export interface ResumeAt {
  /** The id as the caller gave it. */
  id: string;
  row: ProcessRead;
  def: WorkflowDefinition;
  stepDef: StepDef | undefined;
  actor: Actor;
  /** The dispatch that gets the resumed process run. */
  job: Dispatch;
  /** 409 `not_resumable` in the status read. */
  notResumable: () => ConflictError;
}

function isEmpty(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    (typeof body === 'object' && Object.keys(body).length === 0)
  );
}

/**
 * A retry's body: a patch of the state, shallow-merged before the step runs again; `force` lets
 * it change the JSON type of a value (see patchProblems).
 */
const statePatchSchema = z
  .object({ state: z.record(z.string(), z.unknown()), force: z.boolean().optional() })
  .strict();

function parseOrThrow(
  schema: typeof statePatchSchema,
  body: unknown,
  id: string,
  status: string,
): z.output<typeof statePatchSchema> {
  const r = schema.safeParse(body);
  if (!r.success)
    throw new ValidationError(
      'validation_error',
      `Process ${id} is ${status}: a resume takes no input, or {"state": {…}} to patch the state before the retry`,
      { details: r.error.issues.map((i) => ({ path: i.path, message: i.message, code: i.code })) },
    );
  return r.data;
}

/**
 * The resume of a process that is not suspended: its step runs again, on the state patched by
 * `{ "state": { … } }` when the body has one (failed and inconsistent_data processes only).
 */
export async function retryProcess(
  ctx: EngineContext,
  { id, row, def, stepDef, actor, job, notResumable }: ResumeAt,
  body: unknown,
): Promise<void> {
  const user = actor.name;
  // A failed step may be retried on a patched state: `{ "state": { … } }`.
  const patch = isEmpty(body) ? undefined : parseOrThrow(statePatchSchema, body, id, row.status);
  if (stepDef?.name !== row.lastStep) throw workflowChanged(def, row, stepDef?.name);
  if (patch) {
    if (!isIn(REPAIRABLE_STATUSES, row.status))
      throw new ConflictError(
        'not_repairable',
        `Process ${id} is ${row.status}: only a failed or inconsistent_data process's state can be patched`,
      );
    const problems = patchProblems(def, row.currentState, patch.state, patch.force === true);
    if (problems.length > 0)
      throw new ValidationError(
        'validation_error',
        `Invalid state patch for process ${id}: ${problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ')}`,
        { details: problems },
      );
    const state = { ...row.currentState, ...patch.state };
    ctx.checkStateSize(state);
    checkHook(def.authorizeRetry ?? def.authorize, {
      user: actor,
      action: 'retry',
      workflow: def.name,
      process: hookProcess(row),
      input: patch.state,
    });
    const patched = (tx: Queryable) =>
      patchAndResume(tx, {
        id,
        index: row.stepIndex,
        name: stepDef.name,
        group: stepDef.group,
        patch: patch.state,
        state,
        user,
      });
    if (!(await ctx.makeRunnable(job, patched))) await ctx.refused(notResumable());
    return;
  }
  // Not from `resumed` either: a resume racing this one may have just committed.
  // Waiting for the children it started: the end of its last child continues it.
  if (waitsForChildren(row))
    throw new ConflictError(
      'waiting_for_children',
      `Process ${id} waits for the child processes it started at ${stepDef.name}; it goes on when they have ended`,
    );
  checkHook(def.authorizeRetry ?? def.authorize, {
    user: actor,
    action: 'retry',
    workflow: def.name,
    process: hookProcess(row),
  });
  // Only from the status read: a waiting process's scheduled retry is replaced by this one.
  const resume = { ...job, from: row.status };
  if (!(await ctx.makeRunnable(resume, (tx) => markResumed(tx, id, [row.status], user))))
    await ctx.refused(notResumable());
}

/**
 * Skips the failed step of a failed or inconsistent_data process: recorded `skipped` with the
 * user, and the process goes on past it (completed when it was the last step). 409
 * `not_repairable` in any other status; behind the workflow's retry hooks.
 */
export async function skipStep(ctx: EngineContext, id: string, actor: Actor): Promise<void> {
  const row = await ctx.requireProcess(id);
  await ctx.requireUnlocked();
  if (!isIn(REPAIRABLE_STATUSES, row.status))
    throw new ConflictError(
      'not_repairable',
      `Process ${id} is ${row.status}: only the failed step of a failed or inconsistent_data process can be skipped`,
      { details: { status: row.status } },
    );
  const def = ctx.registeredWorkflow(row);
  const stepDef = def.steps[row.stepIndex];
  if (!stepDef || stepDef.name !== row.lastStep) throw workflowChanged(def, row, stepDef?.name);
  checkHook(def.authorizeRetry ?? def.authorize, {
    user: actor,
    action: 'retry',
    workflow: def.name,
    process: hookProcess(row),
  });
  const isLast = row.stepIndex === def.steps.length - 1;
  const skip = (tx: Queryable) =>
    skipFailedStep(tx, {
      id,
      index: row.stepIndex,
      name: stepDef.name,
      group: stepDef.group,
      state: row.currentState,
      user: actor.name,
      nextStatus: isLast ? 'completed' : 'resumed',
    });
  const notSkippable = () =>
    new ConflictError('not_repairable', `Process ${id} is no longer ${row.status}`);
  if (isLast) {
    const events = await skip(ctx.pool);
    if (!events) await ctx.refused(notSkippable());
    ctx.publish(asEvents(events));
    return;
  }
  const job = dispatchOf('resume', id, actor.name, row);
  if (!(await ctx.makeRunnable(job, skip))) await ctx.refused(notSkippable());
}

/** A value's JSON type, as a patch is compared with the value it replaces. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * What is wrong with a state patch, by path: against the workflow's `patchable` schema (the keys
 * an operator may patch, and their values), else a value whose JSON type differs from the one it
 * replaces (a number patched with text reached the provisioning system) unless `force`. New keys
 * are let through without a schema.
 */
function patchProblems(
  def: WorkflowDefinition,
  current: Record<string, unknown>,
  patch: Record<string, unknown>,
  force: boolean,
): { path: (string | number)[]; message: string; code: string }[] {
  if (def.patchable) {
    const r = def.patchable.partial().strict().safeParse(patch);
    return r.success
      ? []
      : r.error.issues.map((i) => ({
          path: ['state', ...i.path.map((k) => (typeof k === 'symbol' ? String(k) : k))],
          message: i.message,
          code: i.code,
        }));
  }
  if (force) return [];
  return Object.entries(patch).flatMap(([key, value]) => {
    if (!Object.hasOwn(current, key)) return [];
    const was = jsonType(current[key]);
    const now = jsonType(value);
    return was === now
      ? []
      : [
          {
            path: ['state', key],
            message: `the value is ${was}, the patch gives ${now} (send "force": true to change its type)`,
            code: 'invalid_type',
          },
        ];
  });
}

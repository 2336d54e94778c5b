// Starts: a process of a workflow from its start form, and the process of a schedule's tick.
import { randomUUID } from 'node:crypto';
import { inSavepoint, lockForTransaction, sqlRunnerOf, withTransaction } from '../../db/pool.ts';
import type { Queryable } from '../../db/pool.ts';
import { processExists, unendedOfSchedule } from '../../db/processes.ts';
import { insertProcesses, type Inserted, type NewProcess } from '../../db/leases.ts';
import { acquireLocks } from '../../db/locks.ts';
import type { Actor } from '../actor.ts';
import { createBatcher, type Batcher } from '../batcher.ts';
import { dispatchOf, type Dispatch, type ScheduledStart } from '../dispatch.ts';
import type { WorkflowDefinition } from '../dsl.ts';
import { ConflictError, OrchestratorError, PreconditionError, ValidationError } from '../errors.ts';
import { parseForm } from '../forms.ts';
import type { State } from '../types.ts';
import { checkHook, type EngineContext } from './context.ts';

/** The row of a new process of `def`. */
const newProcess = (
  def: WorkflowDefinition,
  id: string,
  user: string | null,
  input: State,
): NewProcess => ({
  id,
  workflowName: def.name,
  workflowVersion: def.version,
  target: def.target,
  isTask: def.isTask,
  createdBy: user,
  input,
});

/** The resource keys a start needs, checked: a list of distinct non-empty strings. */
function keysOf(def: WorkflowDefinition, input: State): string[] {
  let keys: unknown;
  try {
    keys = def.lockKeys?.(input);
  } catch (err) {
    throw new ValidationError(
      'validation_error',
      `The resource keys of ${def.name} cannot be computed from this input: ${(err as Error).message}`,
    );
  }
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string' && k.length > 0))
    throw new Error(`lockKeys of ${def.name} must return a list of non-empty strings`);
  return [...new Set(keys as string[])].sort();
}

/** A start waiting for its insert: the row, and the job that gets it run. */
interface Start {
  process: NewProcess;
  job: Dispatch;
}

/** The starts of workflows without checks, sent together when the database is busy. */
export type StartBatcher = Batcher<Start, Inserted | undefined>;

/**
 * Concurrent starts go together when the database is busy: one statement (worker mode: one
 * transaction with their jobs) and one commit for many requests; each alone when idle.
 */
export function createStartBatcher({ pool, dispatcher }: EngineContext): StartBatcher {
  /** Inserts processes with their jobs (worker mode) in one transaction; one statement else. */
  async function insertWithJobs(batch: readonly Start[]): Promise<(Inserted | undefined)[]> {
    const dispatch = dispatcher.dispatch?.bind(dispatcher);
    const rows = batch.map((s) => s.process);
    if (!dispatch) return insertProcesses(pool, rows);
    return withTransaction(pool, async (tx) => {
      const inserted = await insertProcesses(tx, rows);
      const jobs = batch.filter((_, i) => inserted[i]).map((s) => s.job);
      if (jobs.length > 0) await dispatch(tx, jobs);
      return inserted;
    });
  }
  return createBatcher<Start, Inserted | undefined>({
    one: async (s) => (await insertWithJobs([s]))[0],
    many: insertWithJobs,
  });
}

/**
 * Inserts a process in `tx` after the checks its workflow asks for: its run predicate (starts of
 * one workflow take turns, so two cannot both pass it), then its resource keys (all or none;
 * `refuse`: 409 `resource_locked` naming the holders; `queue`: it waits, `created`, until it is
 * given them). Its job goes in `tx` too. Returns what to do once `tx` committed.
 */
async function startInTransaction(
  ctx: EngineContext,
  tx: Queryable,
  s: {
    def: WorkflowDefinition;
    input: State;
    user: string | null;
    id: string;
    scheduleName?: string;
  },
): Promise<() => void> {
  const { def, input, user, id } = s;
  const lockKeys = def.lockKeys ? keysOf(def, input) : undefined;
  if (def.runPredicate) {
    await lockForTransaction(tx, `orchestrator.start:${def.name}`);
    const verdict = await def.runPredicate({
      workflow: def.name,
      input,
      user,
      db: sqlRunnerOf(tx),
    });
    if (verdict !== true)
      throw new PreconditionError(
        'precondition_failed',
        typeof verdict === 'string' && verdict
          ? verdict
          : `The start of ${def.name} was refused by its run predicate`,
      );
  }
  const [inserted] = await insertProcesses(tx, [
    { ...newProcess(def, id, user, input), scheduleName: s.scheduleName, lockKeys },
  ]);
  if (!inserted) throw ctx.paused();
  let queued = false;
  if (lockKeys && lockKeys.length > 0) {
    const held = await acquireLocks(tx, id, lockKeys, def.lockMode === 'queue');
    if (held && def.lockMode !== 'queue') {
      const who = held.map((h) => `${h.key} (held by process ${h.holder})`).join(', ');
      throw new ConflictError(
        'resource_locked',
        `A resource this process needs is locked: ${who || lockKeys.join(', ')}`,
        { details: { keys: lockKeys, held } },
      );
    }
    // Queued: not runnable until given its keys; the sweep after that runs it.
    queued = held !== undefined;
  }
  const job = dispatchOf('new', id, user, def);
  if (!queued) await ctx.dispatcher.dispatch?.(tx, [job]);
  return () => {
    ctx.publish([inserted.event]);
    if (!queued) ctx.dispatcher.afterCommit(job);
  };
}

export async function startProcess(
  ctx: EngineContext,
  starts: StartBatcher,
  workflowName: string,
  body: unknown,
  actor: Actor,
): Promise<{ id: string }> {
  const { pool, dispatcher, publish } = ctx;
  const def = ctx.registry.require(workflowName);
  const input = await parseForm(def.input, body, {}, `workflow ${def.name}`, ctx.forms);
  ctx.checkStateSize(input);
  checkHook(def.authorize, { user: actor, action: 'start', workflow: def.name, input });
  const user = actor.name;
  const id = randomUUID();
  // A workflow that checks its starts (run predicate, resource locks) starts in a
  // transaction of its own; the others go together with concurrent starts.
  if (def.runPredicate || def.lockKeys) {
    const started = await withTransaction(pool, (tx) =>
      startInTransaction(ctx, tx, { def, input, user, id }),
    );
    started();
    return { id };
  }
  const job = dispatchOf('new', id, user, def);
  const slot = dispatcher.reserve?.();
  let inserted: Inserted | undefined;
  try {
    inserted = await starts.add({
      process: { ...newProcess(def, id, user, input), lease: slot },
      job,
    });
  } finally {
    if (!inserted?.claim) slot?.cancel();
  }
  if (!inserted) throw ctx.paused();
  publish([inserted.event]);
  if (slot && inserted.claim) slot.run(inserted.claim);
  else dispatcher.afterCommit(job);
  return { id };
}

/**
 * Starts the process of one schedule tick in `tx` (the transaction that completes the tick),
 * with the tick's id: a tick is started once whatever retries it. Skipped (with the reason
 * logged) when its schedule does not overlap and its previous process has not ended, when the
 * engine is paused, and when the start is refused. Returns what to do after the commit.
 */
export async function startScheduled(
  ctx: EngineContext,
  tick: ScheduledStart,
): Promise<() => void> {
  const { schedule, tx } = tick;
  const skip = (reason: string) => {
    ctx.logger.info('schedule tick skipped', { schedule: schedule.name, reason });
    return () => {};
  };
  const def = ctx.registry.get(schedule.workflow);
  if (!def) return skip(`workflow ${schedule.workflow} is not registered`);
  await lockForTransaction(tx, `orchestrator.schedule:${schedule.name}`);
  if (await processExists(tx, tick.id)) return skip('started already');
  if (!schedule.overlap && (await unendedOfSchedule(tx, schedule.name)))
    return skip('its previous process has not ended');
  try {
    const input = await parseForm(def.input, schedule.input, {}, `workflow ${def.name}`, ctx.forms);
    // A refusal must not undo the tick's completion: the start runs in a savepoint.
    return await inSavepoint(tx, () =>
      startInTransaction(ctx, tx, {
        def,
        input,
        user: `schedule:${schedule.name}`,
        id: tick.id,
        scheduleName: schedule.name,
      }),
    );
  } catch (err) {
    if (!(err instanceof OrchestratorError)) throw err;
    return skip(`${err.code}: ${err.message}`);
  }
}

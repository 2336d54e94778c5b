import { randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../config/logger.ts';
import type { LiveEvent, Publish } from '../db/events.ts';
import {
  inSavepoint,
  lockForTransaction,
  sqlRunnerOf,
  withSnapshot,
  withTransaction,
  type Pool,
  type Queryable,
} from '../db/pool.ts';
import { listProcesses, statusCounts, type ListQuery } from '../db/process-list.ts';
import {
  getProcessRow,
  getStepRows,
  processExists,
  unendedOfSchedule,
  type ProcessRow,
  type StepRow,
} from '../db/processes.ts';
import {
  getEngineStatus,
  getGlobalLock,
  setGlobalLock,
  type EngineStatus,
} from '../db/settings.ts';
import {
  getCallbacks,
  recordCallbackProgress,
  resolveCallback,
  type CallbackRow,
} from '../db/callbacks.ts';
import { childSummaries } from '../db/children.ts';
import { insertProcesses, type Inserted, type NewProcess } from '../db/leases.ts';
import { acquireLocks, locksOf } from '../db/locks.ts';
import { REPAIRABLE_STATUSES } from '../db/model.ts';
import { deleteTask, resumeAllTasks, setNote } from '../db/operator-writes.ts';
import {
  abortProcessRow,
  markResumed,
  patchAndResume,
  resumeSuspended,
  skipFailedStep,
} from '../db/resumes.ts';
import { createBatcher } from './batcher.ts';
import type { AuthorizeContext, AuthorizeHook, CallbackStep, WorkflowDefinition } from './dsl.ts';
import { CALLBACK, type Actor } from './actor.ts';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  OrchestratorError,
  PreconditionError,
  toStepError,
  UnavailableError,
  ValidationError,
} from './errors.ts';
import { dispatchOf, type Dispatch, type Dispatcher, type ScheduledStart } from './dispatch.ts';
import { firstPage, parseForm } from './forms.ts';
import type { Registry } from './registry.ts';
import { callbackPath, hashCallbackToken } from './runner.ts';
import { isIn, RESUMABLE_STATUSES, type ProcessStatus, type State } from './types.ts';

export interface EngineOptions {
  pool: Pool;
  registry: Registry;
  dispatcher: Dispatcher;
  logger: Logger;
  /** Where the events of committed changes go (after their commit). */
  publish: Publish;
  /** Largest state as JSON an input may lead to (400 `state_too_large`). Default 16 MiB. */
  maxStateBytes?: number;
}

export type Engine = ReturnType<typeof createEngine>;

function isEmpty(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    (typeof body === 'object' && Object.keys(body).length === 0)
  );
}

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

/** A retry's body: a patch of the state, shallow-merged before the step runs again. */
const statePatchSchema = z.object({ state: z.record(z.string(), z.unknown()) }).strict();

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

/** 409 `workflow_changed`: the step at the process's position is not the one it stopped at. */
function workflowChanged(
  def: WorkflowDefinition,
  row: ProcessRow,
  now: string | undefined,
): ConflictError {
  const versions =
    row.workflowVersion || def.version
      ? ` (the process started on version ${row.workflowVersion ?? 'unnamed'}, the workflow is version ${def.version ?? 'unnamed'})`
      : '';
  return new ConflictError(
    'workflow_changed',
    `Workflow ${def.name} changed: the process stopped at ${JSON.stringify(row.lastStep)}, the definition has ${JSON.stringify(now ?? null)} there${versions}`,
    { details: { startedOn: row.workflowVersion, current: def.version ?? null } },
  );
}

/** A hook's answer: true lets the action through; false or a reason is a 403. */
function checkHook(hook: AuthorizeHook | undefined, ctx: AuthorizeContext): void {
  if (!hook) return;
  const verdict = hook(ctx);
  if (verdict === true) return;
  throw new ForbiddenError(
    'forbidden',
    typeof verdict === 'string' && verdict
      ? verdict
      : `${ctx.user.name} may not ${ctx.action} processes of ${ctx.workflow}`,
  );
}

/** The process as an authorization hook sees it. */
const hookProcess = (row: ProcessRow & { currentState: State }) => ({
  id: row.id,
  status: row.status,
  lastStep: row.lastStep,
  createdBy: row.createdBy,
  currentState: row.currentState,
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

/** A callback's payload as the step stores it: checked by its `validate`, which may throw. */
function validateCallback(step: CallbackStep, payload: unknown, state: State): unknown {
  const { validate } = step;
  if (validate === undefined) return payload;
  if (validate instanceof z.ZodType) {
    const r = validate.safeParse(payload);
    if (!r.success) throw new Error(`callback payload refused: ${z.prettifyError(r.error)}`);
    return r.data;
  }
  return validate(payload, state);
}

/** Keys whose value differs from the previous snapshot. */
function stateDelta(prev: State, next: State): State {
  const delta: State = {};
  for (const [k, v] of Object.entries(next)) {
    if (JSON.stringify(prev[k]) !== JSON.stringify(v)) delta[k] = v;
  }
  return delta;
}

/** What a write of the engine returns: the events of the change, or nothing when it did not apply. */
type Written = LiveEvent | readonly LiveEvent[] | undefined;
const asEvents = (w: Written): readonly LiveEvent[] =>
  w === undefined ? [] : 'type' in w ? [w] : w;

/** A start waiting for its insert: the row, and the job that gets it run. */
interface Start {
  process: NewProcess;
  job: Dispatch;
}

/** The process operations of the public API; knows nothing of HTTP, piscina or pg-boss. */
export function createEngine({
  pool,
  registry,
  dispatcher,
  publish,
  logger,
  maxStateBytes = 16 * 1024 * 1024,
}: EngineOptions) {
  /** Refuses an input that would make the state too large to store. */
  const checkStateSize = (state: State) => {
    const bytes = JSON.stringify(state).length;
    if (bytes > maxStateBytes)
      throw new ValidationError(
        'state_too_large',
        `The state would be ${bytes} bytes of JSON, more than ${maxStateBytes}`,
      );
  };
  /** Runs `write` with the dispatch in one transaction; publishes its events once committed. */
  async function makeRunnable(
    job: Dispatch,
    write: (tx: Queryable) => Promise<Written>,
  ): Promise<boolean> {
    const dispatch = dispatcher.dispatch?.bind(dispatcher);
    const written = dispatch
      ? await withTransaction(pool, async (tx) => {
          const w = await write(tx);
          if (w !== undefined) await dispatch(tx, [job]);
          return w;
        })
      : await write(pool);
    if (written === undefined) return false;
    publish(asEvents(written));
    dispatcher.afterCommit(job);
    return true;
  }

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
  // Concurrent starts go together when the database is busy: one statement (worker mode: one
  // transaction with their jobs) and one commit for many requests; each alone when idle.
  const starts = createBatcher<Start, Inserted | undefined>({
    one: async (s) => (await insertWithJobs([s]))[0],
    many: insertWithJobs,
  });

  /**
   * Inserts a process in `tx` after the checks its workflow asks for: its run predicate (starts of
   * one workflow take turns, so two cannot both pass it), then its resource keys (all or none;
   * `refuse`: 409 `resource_locked` naming the holders; `queue`: it waits, `created`, until it is
   * given them). Its job goes in `tx` too. Returns what to do once `tx` committed.
   */
  async function startInTransaction(
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
    if (!inserted) throw paused();
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
    if (!queued) await dispatcher.dispatch?.(tx, [job]);
    return () => {
      publish([inserted.event]);
      if (!queued) dispatcher.afterCommit(job);
    };
  }

  /** With the global lock set nothing starts or resumes: 503 `engine_paused`, nothing written. */
  const paused = () =>
    new UnavailableError(
      'engine_paused',
      'The engine is paused (global lock set); try again once it runs',
    );
  async function requireUnlocked(): Promise<void> {
    if (await getGlobalLock(pool)) throw paused();
  }
  /** A compare-and-set that did not apply: 503 if the engine was paused meanwhile, else `err`. */
  async function refused(err: Error): Promise<never> {
    await requireUnlocked();
    throw err;
  }

  async function requireProcess(id: string, db: Queryable = pool) {
    const row = await getProcessRow(db, id);
    if (!row) throw new NotFoundError('process_not_found', `No process with id ${id}`);
    return row;
  }

  const notAwaiting = (id: string) =>
    new ConflictError(
      'not_awaiting_callback',
      `Process ${id} is not waiting for this callback (answered already, timed out or aborted)`,
    );

  /**
   * The pending callback `token` belongs to, with its process and step; 404 `callback_not_found`
   * for a token that is none of the process's (each compared in constant time, and the same
   * answer for a process that does not exist), 409 when the process does not wait for it.
   */
  async function requireCallback(id: string, token: string) {
    const hash = hashCallbackToken(token);
    const callbacks = await getCallbacks(pool, id);
    let callback: CallbackRow | undefined;
    for (const c of callbacks) if (timingSafeEqual(c.tokenHash, hash)) callback ??= c;
    if (!callback)
      throw new NotFoundError('callback_not_found', 'No callback with this token for this process');
    const row = await requireProcess(id);
    const def = registry.get(row.workflowName);
    const stepDef = def?.steps[row.stepIndex];
    if (
      callback.status !== 'pending' ||
      callback !== callbacks[0] ||
      row.status !== 'awaiting_callback' ||
      row.stepIndex !== callback.stepIndex
    )
      throw notAwaiting(id);
    if (!def || stepDef?.kind !== 'callback' || stepDef.name !== row.lastStep) {
      throw new ConflictError(
        'workflow_changed',
        `Workflow ${row.workflowName} changed: the process waits at ${JSON.stringify(row.lastStep)}, the definition has ${JSON.stringify(stepDef?.name ?? null)} there`,
      );
    }
    return { callback, row, def, stepDef };
  }

  return {
    registry,

    async startProcess(workflowName: string, body: unknown, actor: Actor): Promise<{ id: string }> {
      const def = registry.require(workflowName);
      const input = parseForm(def.input, body, {}, `workflow ${def.name}`);
      checkStateSize(input);
      checkHook(def.authorize, { user: actor, action: 'start', workflow: def.name, input });
      const user = actor.name;
      const id = randomUUID();
      // A workflow that checks its starts (run predicate, resource locks) starts in a
      // transaction of its own; the others go together with concurrent starts.
      if (def.runPredicate || def.lockKeys) {
        const started = await withTransaction(pool, (tx) =>
          startInTransaction(tx, { def, input, user, id }),
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
      if (!inserted) throw paused();
      publish([inserted.event]);
      if (slot && inserted.claim) slot.run(inserted.claim);
      else dispatcher.afterCommit(job);
      return { id };
    },

    /**
     * Starts the process of one schedule tick in `tx` (the transaction that completes the tick),
     * with the tick's id: a tick is started once whatever retries it. Skipped (with the reason
     * logged) when its schedule does not overlap and its previous process has not ended, when the
     * engine is paused, and when the start is refused. Returns what to do after the commit.
     */
    async startScheduled(tick: ScheduledStart): Promise<() => void> {
      const { schedule, tx } = tick;
      const skip = (reason: string) => {
        logger.info('schedule tick skipped', { schedule: schedule.name, reason });
        return () => {};
      };
      const def = registry.get(schedule.workflow);
      if (!def) return skip(`workflow ${schedule.workflow} is not registered`);
      await lockForTransaction(tx, `orchestrator.schedule:${schedule.name}`);
      if (await processExists(tx, tick.id)) return skip('started already');
      if (!schedule.overlap && (await unendedOfSchedule(tx, schedule.name)))
        return skip('its previous process has not ended');
      try {
        const input = parseForm(def.input, schedule.input, {}, `workflow ${def.name}`);
        // A refusal must not undo the tick's completion: the start runs in a savepoint.
        return await inSavepoint(tx, () =>
          startInTransaction(tx, {
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
    },

    async resumeProcess(id: string, body: unknown, actor: Actor): Promise<void> {
      const user = actor.name;
      const row = await requireProcess(id);
      await requireUnlocked();
      const notResumable = () =>
        new ConflictError('not_resumable', `Process ${id} is ${row.status} and cannot be resumed`, {
          details: { status: row.status },
        });
      // `resumed` is on its way to a runner already: a second resume (two clients racing) gets 409.
      if (!isIn(RESUMABLE_STATUSES, row.status) || row.status === 'resumed') throw notResumable();
      const def = registry.get(row.workflowName);
      if (!def)
        throw new ConflictError(
          'workflow_not_found',
          `Workflow ${row.workflowName} is no longer registered`,
        );
      const stepDef = def.steps[row.stepIndex];
      const job = dispatchOf('resume', id, user, row);

      if (row.status === 'suspended') {
        if (stepDef?.kind !== 'input' || stepDef.name !== row.lastStep)
          throw workflowChanged(def, row, stepDef?.name);
        const input = parseForm(stepDef.pages, body, row.currentState, `step ${stepDef.name}`);
        checkStateSize({ ...row.currentState, ...input });
        // The step's assignee is a role, checked when the user's token carries roles.
        if (stepDef.assignee && actor.roles.length > 0 && !actor.roles.includes(stepDef.assignee))
          throw new ForbiddenError(
            'forbidden',
            `Step ${stepDef.name} is assigned to ${stepDef.assignee}; ${actor.name} does not have that role`,
          );
        checkHook(stepDef.authorizeResume ?? def.authorize, {
          user: actor,
          action: 'resume',
          workflow: def.name,
          process: hookProcess(row),
          input,
        });
        const isLast = row.stepIndex === def.steps.length - 1;
        const resumed = async (tx: Queryable) =>
          resumeSuspended(tx, {
            id,
            index: row.stepIndex,
            name: stepDef.name,
            group: stepDef.group,
            input,
            state: { ...row.currentState, ...input },
            user,
            nextStatus: isLast ? 'completed' : 'resumed',
          });
        let ok: boolean;
        if (isLast) {
          const events = await resumed(pool);
          publish(asEvents(events));
          ok = events !== undefined;
        } else ok = await makeRunnable(job, resumed);
        if (!ok) await refused(notResumable());
        return;
      }

      // A failed step may be retried on a patched state: `{ "state": { … } }`.
      const patch = isEmpty(body)
        ? undefined
        : parseOrThrow(statePatchSchema, body, id, row.status);
      if (stepDef?.name !== row.lastStep) throw workflowChanged(def, row, stepDef?.name);
      if (patch) {
        if (!isIn(REPAIRABLE_STATUSES, row.status))
          throw new ConflictError(
            'not_repairable',
            `Process ${id} is ${row.status}: only a failed or inconsistent_data process's state can be patched`,
          );
        const state = { ...row.currentState, ...patch.state };
        checkStateSize(state);
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
        if (!(await makeRunnable(job, patched))) await refused(notResumable());
        return;
      }
      // Not from `resumed` either: a resume racing this one may have just committed.
      // Waiting for the children it started: the end of its last child continues it.
      if (row.status === 'waiting' && row.retryAt === null && stepDef?.kind === 'children')
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
      if (!(await makeRunnable(resume, (tx) => markResumed(tx, id, [row.status], user))))
        await refused(notResumable());
    },

    /**
     * Skips the failed step of a failed or inconsistent_data process: recorded `skipped` with the
     * user, and the process goes on past it (completed when it was the last step). 409
     * `not_repairable` in any other status; behind the workflow's retry hooks.
     */
    async skipStep(id: string, actor: Actor): Promise<void> {
      const row = await requireProcess(id);
      await requireUnlocked();
      if (!isIn(REPAIRABLE_STATUSES, row.status))
        throw new ConflictError(
          'not_repairable',
          `Process ${id} is ${row.status}: only the failed step of a failed or inconsistent_data process can be skipped`,
          { details: { status: row.status } },
        );
      const def = registry.get(row.workflowName);
      if (!def)
        throw new ConflictError(
          'workflow_not_found',
          `Workflow ${row.workflowName} is no longer registered`,
        );
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
        const events = await skip(pool);
        if (!events) await refused(notSkippable());
        publish(asEvents(events));
        return;
      }
      const job = dispatchOf('resume', id, actor.name, row);
      if (!(await makeRunnable(job, skip))) await refused(notSkippable());
    },

    /**
     * A callback's answer: `payload` stored under the step's result key (after its `validate`),
     * and the process continues; a refusal of `validate` fails it. 404 for a token that is not
     * one of the process's, 409 `not_awaiting_callback` when it does not wait for this one
     * (answered already, timed out, aborted). Of two answers racing exactly one applies.
     */
    async answerCallback(id: string, token: string, payload: unknown): Promise<void> {
      const user = CALLBACK.name;
      const { callback, row, stepDef, def } = await requireCallback(id, token);
      await requireUnlocked();
      let value: unknown = payload;
      let error: { name: string; message: string } | undefined;
      let traceback: string | undefined;
      try {
        value = validateCallback(stepDef, payload, row.currentState);
      } catch (err) {
        const e = toStepError(err);
        error = { name: e.name, message: e.message };
        traceback = e.stack;
      }
      if (!error) checkStateSize({ ...row.currentState, [stepDef.resultKey]: value });
      const isLast = row.stepIndex === def.steps.length - 1;
      const nextStatus: ProcessStatus = error ? 'failed' : isLast ? 'completed' : 'resumed';
      const write = (tx: Queryable) =>
        resolveCallback(tx, {
          processId: id,
          callbackId: callback.id,
          index: row.stepIndex,
          name: stepDef.name,
          group: stepDef.group,
          state: error ? row.currentState : { ...row.currentState, [stepDef.resultKey]: value },
          stepStatus: error ? 'failed' : 'success',
          error,
          traceback,
          nextStatus,
          user,
        });
      let ok: boolean;
      if (nextStatus === 'resumed') {
        const job = dispatchOf('resume', id, user, row);
        ok = await makeRunnable(job, write);
      } else {
        const events = await write(pool);
        publish(asEvents(events));
        ok = events !== undefined;
      }
      if (!ok) await refused(notAwaiting(id));
    },

    /** Interim progress of a pending callback: stored and announced, the process keeps waiting. */
    async callbackProgress(id: string, token: string, progress: unknown): Promise<void> {
      const { callback } = await requireCallback(id, token);
      const event = await recordCallbackProgress(pool, id, callback.id, progress);
      if (!event) throw notAwaiting(id);
      publish([event]);
    },

    /**
     * Resumes every failed, waiting, api_unavailable and inconsistent_data task once; 409
     * `already_running` while another resume-all runs (on any instance).
     */
    async resumeAllTasks(actor: Actor): Promise<{ count: number }> {
      const user = actor.name;
      await requireUnlocked();
      // Tasks whose workflow's hooks refuse this user are left as they are.
      const allowed = (t: { id: string; workflowName: string; status: ProcessStatus }) => {
        const def = registry.get(t.workflowName);
        if (!def) return false;
        try {
          checkHook(def.authorizeRetry ?? def.authorize, {
            user: actor,
            action: 'retry',
            workflow: def.name,
          });
          return true;
        } catch {
          return false;
        }
      };
      const done = await withTransaction(pool, async (tx) => {
        const resumed = await resumeAllTasks(tx, user, allowed);
        if (!resumed) return null;
        const jobs = resumed.map((r) => dispatchOf('resume', r.id, user, r, r.from));
        if (jobs.length > 0) await dispatcher.dispatch?.(tx, jobs);
        return { resumed, jobs };
      });
      if (!done)
        throw new ConflictError('already_running', 'A resume of all tasks is running already');
      publish(done.resumed.map((r) => r.event));
      for (const job of done.jobs) dispatcher.afterCommit(job);
      return { count: done.jobs.length };
    },

    /** Deletes a task with its steps: 400 `not_a_task` for a workflow, 409 `process_running`. */
    async deleteTask(id: string, actor: Actor): Promise<void> {
      const row = await requireProcess(id);
      const def = registry.get(row.workflowName);
      if (row.isTask && def)
        checkHook(def.authorize, {
          user: actor,
          action: 'delete',
          workflow: def.name,
          process: hookProcess(row),
        });
      if (await deleteTask(pool, id)) return;
      if (!row.isTask)
        throw new ValidationError(
          'not_a_task',
          `Process ${id} is a workflow; only tasks are deleted`,
        );
      throw new ConflictError('process_running', `Task ${id} is running; abort it first`, {
        details: { status: row.status },
      });
    },

    /** Sets the note of a process and returns the process. */
    async setNote(id: string, note: string | null) {
      const event = await setNote(pool, id, note);
      if (!event) throw new NotFoundError('process_not_found', `No process with id ${id}`);
      publish([event]);
      return this.getProcess(id);
    },

    async abortProcess(id: string, actor: Actor): Promise<void> {
      // One read for the hook and the parent (which never changes); 404 without the process.
      const row = await requireProcess(id);
      checkHook(registry.get(row.workflowName)?.authorize, {
        user: actor,
        action: 'abort',
        workflow: row.workflowName,
        process: hookProcess(row),
      });
      const done = await abortProcessRow(pool, id, actor.name);
      if (!done) {
        const now = await requireProcess(id);
        throw new ConflictError('already_finished', `Process ${id} is already ${now.status}`, {
          details: { status: now.status },
        });
      }
      publish(done.events);
      // Its children were aborted with it; a child's parent may go on now that it ended.
      for (const aborted of done.aborted) dispatcher.aborted(aborted);
      if (row.parentId) dispatcher.nudge?.(row.parentId);
    },

    async getProcess(id: string) {
      // One snapshot: a step committed between two separate reads would show a process whose
      // steps do not match its status.
      const [row, stepRows] = await withSnapshot(pool, (tx) =>
        Promise.all([requireProcess(id, tx), getStepRows(tx, id)]),
      );
      const def = registry.get(row.workflowName);
      const stepDef = def?.steps[row.stepIndex];
      let prev: State = {};
      const steps = stepRows.map((s: StepRow) => {
        const out = { ...s, stateDelta: stateDelta(prev, s.state) };
        prev = s.state;
        return out;
      });
      // A form built from the current state: its first page (the others follow from the answers).
      const form =
        row.status === 'suspended' && stepDef?.kind === 'input'
          ? { form: firstPage(stepDef.pages, row.currentState), formPages: stepDef.pages.length }
          : {};
      const [latest] = await getCallbacks(pool, id);
      const callback = latest && {
        status: latest.status,
        path: callbackPath(id, '<token>'),
        createdAt: latest.createdAt,
        expiresAt: latest.expiresAt,
        resolvedAt: latest.resolvedAt,
        progress: latest.progress,
        progressAt: latest.progressAt,
      };
      const locks = def?.lockKeys ? { locks: await locksOf(pool, id) } : {};
      // A parent lists the children it started (subProcesses), with where each stands.
      const kids = def?.steps.some((st) => st.kind === 'children')
        ? { children: await childSummaries(pool, id) }
        : {};
      return { ...row, steps, ...form, ...(callback ? { callback } : {}), ...locks, ...kids };
    },

    /**
     * Sets or clears the global lock. Set: nothing starts or resumes, and running processes stop
     * before their next step (their commit gives them back). Cleared: everything that stopped for
     * it continues, dispatched in the transaction that clears the lock.
     */
    async setGlobalLock(globalLock: boolean): Promise<EngineStatus> {
      if (globalLock) publish([await setGlobalLock(pool, true)]);
      else {
        const [event, after] = await withTransaction(pool, async (tx) => {
          const e = await setGlobalLock(tx, false);
          return [e, await dispatcher.unpause(tx)] as const;
        });
        publish([event]);
        after();
      }
      return getEngineStatus(pool);
    },
    engineStatus: () => getEngineStatus(pool),

    listProcesses: (q: ListQuery) => listProcesses(pool, q),
    statusCounts: () => statusCounts(pool),
  };
}

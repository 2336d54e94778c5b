// What every engine operation works with: the engine's dependencies, and the checks and writes
// the operations share (the process read, the pause check, a write that makes a process runnable).
import type { Logger } from '../../config/logger.ts';
import type { LiveEvent, Publish } from '../../db/events.ts';
import { withTransaction, type Pool, type Queryable } from '../../db/pool.ts';
import { getProcessRow, type ProcessRow } from '../../db/processes.ts';
import { getGlobalLock } from '../../db/settings.ts';
import type { Dispatch, Dispatcher } from '../dispatch.ts';
import type { AuthorizeContext, AuthorizeHook, WorkflowDefinition } from '../dsl.ts';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../errors.ts';
import type { FormOptions } from '../forms.ts';
import type { Registry } from '../registry.ts';
import type { State } from '../types.ts';

/** A process as read for an operation: its row and its current state. */
export type ProcessRead = ProcessRow & { currentState: State };

/** What a write of the engine returns: the events of the change, or nothing when it did not apply. */
export type Written = LiveEvent | readonly LiveEvent[] | undefined;
export const asEvents = (w: Written): readonly LiveEvent[] =>
  w === undefined ? [] : 'type' in w ? [w] : w;

export interface EngineContext {
  pool: Pool;
  /** The reads of the API (a process, the list, the counts, the engine status): `pool` or its own. */
  readPool: Pool;
  registry: Registry;
  dispatcher: Dispatcher;
  /** Where the events of committed changes go (after their commit). */
  publish: Publish;
  logger: Logger;
  /** Largest state as JSON an input may lead to (400 `state_too_large`). */
  maxStateBytes: number;
  /** Refuses an input that would make the state too large to store. */
  checkStateSize(state: State): void;
  /** How forms are evaluated: their time limit (FORM_TIMEOUT_MS). */
  forms: FormOptions;
  /**
   * Runs `write` with the dispatch of `job` in one transaction; publishes its events once
   * committed. False when the write did not apply.
   */
  makeRunnable(job: Dispatch, write: (tx: Queryable) => Promise<Written>): Promise<boolean>;
  /** 503 `engine_paused`. */
  paused(): UnavailableError;
  /** With the global lock set nothing starts or resumes: 503 `engine_paused`, nothing written. */
  requireUnlocked(): Promise<void>;
  /** A compare-and-set that did not apply: 503 if the engine was paused meanwhile, else `err`. */
  refused(err: Error): Promise<never>;
  /** The process, read from `db` (default the pool); 404 `process_not_found` without it. */
  requireProcess(id: string, db?: Queryable): Promise<ProcessRead>;
  /** The workflow of `row`; 409 `workflow_not_found` when it is no longer registered. */
  registeredWorkflow(row: ProcessRow): WorkflowDefinition;
}

export interface EngineContextOptions {
  pool: Pool;
  /** Default `pool`. */
  readPool?: Pool | undefined;
  registry: Registry;
  dispatcher: Dispatcher;
  publish: Publish;
  logger: Logger;
  maxStateBytes: number;
  forms: FormOptions;
}

export function createEngineContext(o: EngineContextOptions): EngineContext {
  const { pool, registry, dispatcher, publish, maxStateBytes } = o;
  const paused = () =>
    new UnavailableError(
      'engine_paused',
      'The engine is paused (global lock set); try again once it runs',
    );
  async function requireUnlocked(): Promise<void> {
    if (await getGlobalLock(pool)) throw paused();
  }
  return {
    ...o,
    readPool: o.readPool ?? pool,
    checkStateSize(state) {
      const bytes = JSON.stringify(state).length;
      if (bytes > maxStateBytes)
        throw new ValidationError(
          'state_too_large',
          `The state would be ${bytes} bytes of JSON, more than ${maxStateBytes}`,
        );
    },
    async makeRunnable(job, write) {
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
    },
    paused,
    requireUnlocked,
    async refused(err) {
      await requireUnlocked();
      throw err;
    },
    async requireProcess(id, db = pool) {
      const row = await getProcessRow(db, id);
      if (!row) throw new NotFoundError('process_not_found', `No process with id ${id}`);
      return row;
    },
    registeredWorkflow(row) {
      const def = registry.get(row.workflowName);
      if (!def)
        throw new ConflictError(
          'workflow_not_found',
          `Workflow ${row.workflowName} is no longer registered`,
        );
      return def;
    },
  };
}

/** A hook's answer: true lets the action through; false or a reason is a 403. */
export function checkHook(hook: AuthorizeHook | undefined, ctx: AuthorizeContext): void {
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
export const hookProcess = (row: ProcessRead) => ({
  id: row.id,
  status: row.status,
  lastStep: row.lastStep,
  createdBy: row.createdBy,
  currentState: row.currentState,
});

/** 409 `workflow_changed`: the step at the process's position is not the one it stopped at. */
export function workflowChanged(
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

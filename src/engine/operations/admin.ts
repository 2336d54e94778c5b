// Operator actions: resume every stopped task, delete a task, a process's note, abort, and the
// global lock (pause) with the engine status.
import { withTransaction } from '../../db/pool.ts';
import {
  childrenGoingOn,
  deleteTask as deleteTaskRow,
  resumeAllTasks as resumeAll,
  setNote as setNoteRow,
} from '../../db/operator-writes.ts';
import { abortProcessRow } from '../../db/resumes.ts';
import { getEngineStatus, setGlobalLock as setLock, type EngineStatus } from '../../db/settings.ts';
import type { Actor } from '../actor.ts';
import { dispatchOf } from '../dispatch.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { ProcessStatus } from '../types.ts';
import { checkHook, hookProcess, type EngineContext } from './context.ts';
import { getProcess } from './view.ts';

/**
 * Resumes every failed, waiting, api_unavailable and inconsistent_data task once; 409
 * `already_running` while another resume-all runs (on any instance).
 */
export async function resumeAllTasks(ctx: EngineContext, actor: Actor): Promise<{ count: number }> {
  const { registry, dispatcher } = ctx;
  const user = actor.name;
  await ctx.requireUnlocked();
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
  const done = await withTransaction(ctx.pool, async (tx) => {
    const resumed = await resumeAll(tx, user, allowed);
    if (!resumed) return null;
    const jobs = resumed.map((r) => dispatchOf('resume', r.id, user, r, r.from));
    if (jobs.length > 0) await dispatcher.dispatch?.(tx, jobs);
    return { resumed, jobs };
  });
  if (!done) throw new ConflictError('already_running', 'A resume of all tasks is running already');
  ctx.publish(done.resumed.map((r) => r.event));
  for (const job of done.jobs) dispatcher.afterCommit(job);
  return { count: done.jobs.length };
}

/**
 * Deletes a task with its steps: 400 `not_a_task` for a workflow, 409 `process_running`, 409
 * `has_running_children` while a child it started has not ended.
 */
export async function deleteTask(ctx: EngineContext, id: string, actor: Actor): Promise<void> {
  const row = await ctx.requireProcess(id);
  const def = ctx.registry.get(row.workflowName);
  if (row.isTask && def)
    checkHook(def.authorize, {
      user: actor,
      action: 'delete',
      workflow: def.name,
      process: hookProcess(row),
    });
  if (await deleteTaskRow(ctx.pool, id)) return;
  if (!row.isTask)
    throw new ValidationError('not_a_task', `Process ${id} is a workflow; only tasks are deleted`);
  // Its children would go on without a parent: the operator aborts it first (which aborts them)
  // or waits for them to end.
  const children = await childrenGoingOn(ctx.pool, id);
  if (children > 0)
    throw new ConflictError(
      'has_running_children',
      `Task ${id} has ${children} child process${children === 1 ? '' : 'es'} that ha${children === 1 ? 's' : 've'} not ended; abort it first (its children are aborted with it)`,
      { details: { status: row.status, children } },
    );
  throw new ConflictError('process_running', `Task ${id} is running; abort it first`, {
    details: { status: row.status },
  });
}

/** Sets the note of a process and returns the process. */
export async function setNote(ctx: EngineContext, id: string, note: string | null) {
  const event = await setNoteRow(ctx.pool, id, note);
  if (!event) throw new NotFoundError('process_not_found', `No process with id ${id}`);
  ctx.publish([event]);
  return getProcess(ctx, id);
}

export async function abortProcess(ctx: EngineContext, id: string, actor: Actor): Promise<void> {
  // One read for the hook and the parent (which never changes); 404 without the process.
  const row = await ctx.requireProcess(id);
  checkHook(ctx.registry.get(row.workflowName)?.authorize, {
    user: actor,
    action: 'abort',
    workflow: row.workflowName,
    process: hookProcess(row),
  });
  const done = await abortProcessRow(ctx.pool, id, actor.name);
  if (!done) {
    const now = await ctx.requireProcess(id);
    throw new ConflictError('already_finished', `Process ${id} is already ${now.status}`, {
      details: { status: now.status },
    });
  }
  ctx.publish(done.events);
  // Its children were aborted with it; a child's parent may go on now that it ended.
  for (const aborted of done.aborted) ctx.dispatcher.aborted(aborted);
  if (row.parentId) ctx.dispatcher.nudge?.(row.parentId);
}

/**
 * Sets or clears the global lock. Set: nothing starts or resumes, and running processes stop
 * before their next step (their commit gives them back). Cleared: everything that stopped for
 * it continues, dispatched in the transaction that clears the lock.
 */
export async function setGlobalLock(
  ctx: EngineContext,
  globalLock: boolean,
): Promise<EngineStatus> {
  const { pool, publish } = ctx;
  if (globalLock) publish([await withTransaction(pool, (tx) => setLock(tx, true))]);
  else {
    const [event, after] = await withTransaction(pool, async (tx) => {
      const e = await setLock(tx, false);
      return [e, await ctx.dispatcher.unpause(tx)] as const;
    });
    publish([event]);
    after();
  }
  return getEngineStatus(pool);
}

export const engineStatus = (ctx: EngineContext) => getEngineStatus(ctx.readPool);

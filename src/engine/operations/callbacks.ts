// Callbacks: an external system's answer to a callback step, and its interim progress.
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '../../db/pool.ts';
import {
  getCallbacks,
  recordCallbackProgress,
  resolveCallback,
  type CallbackRow,
} from '../../db/callbacks.ts';
import { CALLBACK } from '../actor.ts';
import { dispatchOf } from '../dispatch.ts';
import type { CallbackStep } from '../dsl.ts';
import { ConflictError, NotFoundError, toStepError } from '../errors.ts';
import { hashCallbackToken } from '../runner.ts';
import type { ProcessStatus, State } from '../types.ts';
import { asEvents, type EngineContext } from './context.ts';

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
async function requireCallback(ctx: EngineContext, id: string, token: string) {
  const hash = hashCallbackToken(token);
  const callbacks = await getCallbacks(ctx.pool, id);
  let callback: CallbackRow | undefined;
  for (const c of callbacks) if (timingSafeEqual(c.tokenHash, hash)) callback ??= c;
  if (!callback)
    throw new NotFoundError('callback_not_found', 'No callback with this token for this process');
  const row = await ctx.requireProcess(id);
  const def = ctx.registry.get(row.workflowName);
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

/**
 * A callback's answer: `payload` stored under the step's result key (after its `validate`),
 * and the process continues; a refusal of `validate` fails it. 404 for a token that is not
 * one of the process's, 409 `not_awaiting_callback` when it does not wait for this one
 * (answered already, timed out, aborted). Of two answers racing exactly one applies.
 */
export async function answerCallback(
  ctx: EngineContext,
  id: string,
  token: string,
  payload: unknown,
): Promise<void> {
  const user = CALLBACK.name;
  const { callback, row, stepDef, def } = await requireCallback(ctx, id, token);
  await ctx.requireUnlocked();
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
  if (!error) ctx.checkStateSize({ ...row.currentState, [stepDef.resultKey]: value });
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
    ok = await ctx.makeRunnable(job, write);
  } else {
    const events = await write(ctx.pool);
    ctx.publish(asEvents(events));
    ok = events !== undefined;
  }
  if (!ok) await ctx.refused(notAwaiting(id));
}

/** Interim progress of a pending callback: stored and announced, the process keeps waiting. */
export async function callbackProgress(
  ctx: EngineContext,
  id: string,
  token: string,
  progress: unknown,
): Promise<void> {
  const { callback } = await requireCallback(ctx, id, token);
  const event = await recordCallbackProgress(ctx.pool, id, callback.id, progress);
  if (!event) throw notAwaiting(id);
  ctx.publish([event]);
}

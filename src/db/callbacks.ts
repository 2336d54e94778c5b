// Callbacks of callback steps: the rows behind a token, an answer, progress, and the timeouts.
import { processEventSql, type ProcessEventRow, type StepEventRow } from './events.ts';
import { CURRENT_STATE, PAUSED, stepAndProcess, stepWrite } from './fragments.ts';
import type { ProcessStatus, State } from './model.ts';
import type { Queryable } from './pool.ts';

/** A callback row, for checking a token and showing a process's callback. */
export interface CallbackRow {
  id: string;
  stepIndex: number;
  tokenHash: Buffer;
  status: 'pending' | 'done' | 'expired' | 'cancelled';
  createdAt: Date;
  expiresAt: Date | null;
  resolvedAt: Date | null;
  progress: unknown;
  progressAt: Date | null;
}

/** The callbacks of a process, latest first. */
export async function getCallbacks(db: Queryable, processId: string): Promise<CallbackRow[]> {
  const { rows } = await db.query<CallbackRow>(
    `SELECT id, step_index AS "stepIndex", token_hash AS "tokenHash", status,
            created_at AS "createdAt", expires_at AS "expiresAt", resolved_at AS "resolvedAt",
            progress, progress_at AS "progressAt"
       FROM orchestrator.callbacks WHERE process_id = $1 ORDER BY id DESC`,
    [processId],
  );
  return rows;
}

/**
 * Applies a callback's answer: the callback `done`, the callback step cleared (`success`, with
 * the payload in `state`) or `failed` (its validation refused the payload), the process on to
 * `nextStatus`. Compare-and-set on the process (awaiting this callback's step) and the callback
 * (pending): of two answers racing, exactly one applies; undefined for the other.
 */
export async function resolveCallback(
  db: Queryable,
  r: {
    processId: string;
    callbackId: string;
    index: number;
    name: string;
    group?: string | undefined;
    state: State;
    stepStatus: 'success' | 'failed';
    error?: { name: string; message: string } | undefined;
    traceback?: string | undefined;
    nextStatus: ProcessStatus;
    user: string | null;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const cleared = r.stepStatus === 'success';
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    stepWrite({
      update: {
        set: `status = $5::text, step_index = $3 + $6::int, attempt = CASE WHEN $6 = 1 THEN 1 ELSE attempt + 1 END,
              last_step = $4, failed_reason = $8, traceback = $9, last_modified_at = now(),
              acting_user = $12, version = version + 1`,
        where: `id = $1 AND status = 'awaiting_callback' AND step_index = $3 AND NOT ${PAUSED}
          AND EXISTS (SELECT 1 FROM orchestrator.callbacks
                       WHERE id = $2 AND process_id = $1 AND status = 'pending')`,
        returning: 'p.last_modified_at',
      },
      between: [
        `cb AS (
       UPDATE orchestrator.callbacks cb SET status = 'done', resolved_at = now()
         FROM p WHERE cb.id = $2 AND cb.status = 'pending')`,
      ],
      step: `id, $3, $4, $7, $10, $11, last_modified_at, $12, $13`,
    }),
    [
      r.processId,
      r.callbackId,
      r.index,
      r.name,
      r.nextStatus,
      cleared ? 1 : 0,
      r.stepStatus,
      cleared ? null : (r.error?.message ?? null),
      r.traceback ?? null,
      JSON.stringify(r.state),
      r.error ? JSON.stringify(r.error) : null,
      r.user,
      r.group ?? null,
    ],
  );
  return stepAndProcess(rows);
}

/**
 * Stores interim progress of a pending callback (the process stays `awaiting_callback`; its
 * version moves so that watchers hear of it). Undefined when the callback is not pending.
 */
export async function recordCallbackProgress(
  db: Queryable,
  processId: string,
  callbackId: string,
  progress: unknown,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `WITH cb AS (
       UPDATE orchestrator.callbacks SET progress = $3, progress_at = now()
        WHERE id = $2 AND process_id = $1 AND status = 'pending'
       RETURNING process_id)
     UPDATE orchestrator.processes p SET last_modified_at = now(), version = version + 1
       FROM cb WHERE p.id = cb.process_id AND p.status = 'awaiting_callback'
     RETURNING ${processEventSql('p')} AS event`,
    [processId, callbackId, JSON.stringify(progress)],
  );
  return rows[0]?.event;
}

/** The reason a process fails with when its callback did not come in time. */
export const CALLBACK_TIMED_OUT = 'callback timed out';

/**
 * Fails up to `limit` processes whose pending callback is past its time: the callback `expired`,
 * a `failed` step row with the current state, the process `failed` with reason
 * `callback timed out`. Rows locked by another instance are skipped (it is timing them out);
 * the compare-and-set on the process makes a callback answered meanwhile win or lose cleanly.
 */
export async function timeOutCallbacks(
  db: Queryable,
  limit: number,
): Promise<[StepEventRow, ProcessEventRow][]> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    stepWrite({
      before: [
        `due AS (
       SELECT id, process_id, step_index FROM orchestrator.callbacks
        WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      ],
      update: {
        set: `status = 'failed', failed_reason = $2, traceback = NULL, attempt = attempt + 1,
              last_modified_at = now(), version = version + 1`,
        from: 'due',
        where: `p.id = due.process_id AND p.status = 'awaiting_callback'
          AND p.step_index = due.step_index`,
        returning: `p.step_index, p.last_step, ${CURRENT_STATE} AS state,
                 (SELECT s.step_group FROM orchestrator.process_steps s
                   WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1) AS step_group`,
      },
      between: [
        // Expired when its process timed out here; a callback left pending by a process that no
        // longer waits for it (aborted while its callback was being committed) is cancelled.
        `ended AS (
       UPDATE orchestrator.callbacks cb
          SET status = CASE WHEN cb.process_id IN (SELECT id FROM p) THEN 'expired' ELSE 'cancelled' END,
              resolved_at = now()
         FROM due WHERE cb.id = due.id)`,
      ],
      step: `id, step_index, last_step, 'failed', state,
              jsonb_build_object('name', 'CallbackTimeout', 'message', $2::text), now(), 'timekeeper',
              step_group`,
    }),
    [limit, CALLBACK_TIMED_OUT],
  );
  return rows.map((r) => [r.step, r.process]);
}

/**
 * When the next retry or callback timeout falls due (null: none ahead), read through their
 * indexes. Only times ahead count: what is due already is handled by whoever looks now.
 */
export async function nextDue(db: Queryable): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT least(
       (SELECT min(retry_at) FROM orchestrator.processes WHERE status = 'waiting' AND retry_at > now()),
       (SELECT min(expires_at) FROM orchestrator.callbacks
         WHERE status = 'pending' AND expires_at > now())) AS at`,
  );
  return rows[0]?.at ?? null;
}

// ---------------------------------------------------------------------------------------------
// Operators' writes: bulk resume, delete, note

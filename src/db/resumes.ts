// The API's resumes and repairs of a process: user input on a suspended step, a resume, an
// abort, a skipped failed step, a patched state before a retry. Each a compare-and-set on status
// and position, in one statement.
import { processEventSql, type ProcessEventRow, type StepEventRow } from './events.ts';
import {
  CANCEL_CALLBACKS,
  CURRENT_STATE,
  PAUSED,
  RELEASE_LEASE,
  stepAndProcess,
  stepWrite,
} from './fragments.ts';
import { REPAIRABLE_STATUSES, TERMINAL_STATUSES, type ProcessStatus, type State } from './model.ts';
import type { Queryable } from './pool.ts';

/** Keeps a user's input ($4) to the processes of CTE `p`. */
const USER_INPUT = `i AS (INSERT INTO orchestrator.input_states (process_id, input, input_type)
           SELECT id, $4, 'user_input' FROM p)`;

/** Records user input on resume of a suspended process: the input step cleared with the merged state. */
export async function resumeSuspended(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    group?: string | undefined;
    input: State;
    state: State;
    user: string | null;
    nextStatus: ProcessStatus;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    stepWrite({
      update: {
        set: `status = $5::text, step_index = $2 + 1, attempt = 1, last_step = $3,
              failed_reason = NULL, traceback = NULL, last_modified_at = now(), assignee = NULL,
              acting_user = $7, version = version + 1`,
        where: `id = $1 AND status = 'suspended' AND step_index = $2 AND NOT ${PAUSED}`,
        returning: 'p.last_modified_at',
      },
      between: [USER_INPUT],
      step: `id, $2, $3, 'success', $6, NULL, last_modified_at, $7, $8`,
    }),
    [
      r.id,
      r.index,
      r.name,
      JSON.stringify(r.input),
      r.nextStatus,
      JSON.stringify(r.state),
      r.user,
      r.group ?? null,
    ],
  );
  return stepAndProcess(rows);
}

/**
 * Marks a process resumed (from failed, waiting, awaiting_callback, …): compare-and-set on its
 * status. A retry that was due later is now, a pending callback is cancelled (the step runs
 * again and hands out a new one).
 */
export async function markResumed(
  db: Queryable,
  id: string,
  from: readonly ProcessStatus[],
  user: string | null,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = 'resumed', retry_at = NULL, last_modified_at = now(), acting_user = $3,
              version = version + 1
        WHERE id = $1 AND status = ANY($2::text[]) AND NOT ${PAUSED}
       RETURNING p.id, ${processEventSql('p')} AS event),
     c AS (${CANCEL_CALLBACKS})
     SELECT event FROM p`,
    [id, from, user],
  );
  return rows[0]?.event;
}

/**
 * Aborts a process that has not ended, and every child process it started (and theirs) that has
 * not: status `aborted`, lease revoked (a runner still in a step can no longer commit), pending
 * callbacks cancelled, queued resource keys given up, and an `abort` step row holding the current
 * state for each. Returns the events (the process's first) and the ids aborted, or undefined when
 * the process has ended or does not exist.
 */
export async function abortProcessRow(
  db: Queryable,
  id: string,
  user: string | null,
): Promise<{ events: (StepEventRow | ProcessEventRow)[]; aborted: string[] } | undefined> {
  const { rows } = await db.query<{ id: string; step: StepEventRow; process: ProcessEventRow }>(
    stepWrite({
      recursive: true,
      before: [
        `tree AS (
       SELECT id FROM orchestrator.processes WHERE id = $1 AND status <> ALL($3::text[])
       UNION
       SELECT c.id FROM orchestrator.processes c JOIN tree t ON c.parent_id = t.id)`,
      ],
      update: {
        set: `status = 'aborted', ${RELEASE_LEASE}, retry_at = NULL, assignee = NULL,
              last_modified_at = now(), last_step = 'Abort', version = version + 1`,
        where: `id IN (SELECT id FROM tree) AND status <> ALL($3::text[])`,
        returning: `p.step_index, ${CURRENT_STATE} AS state`,
      },
      between: [
        `c AS (${CANCEL_CALLBACKS})`,
        // Queued for resource keys (lockMode queue): it leaves the queue, or it would be given them.
        `w AS (DELETE FROM orchestrator.resource_lock_waiters WHERE process_id IN (SELECT id FROM p))`,
      ],
      step: `id, step_index, 'Abort', 'abort', state, NULL, now(), $2, NULL`,
      orderBy: 'p.id = $1 DESC',
    }),
    [id, user, TERMINAL_STATUSES],
  );
  if (rows[0]?.id !== id) return undefined;
  return { events: rows.flatMap((r) => [r.step, r.process]), aborted: rows.map((r) => r.id) };
}

/**
 * Skips the failed step at `index`: a `skipped` row with the state it was given and the user,
 * the process on past it (`nextStatus`: resumed, or completed when it was the last step).
 * Compare-and-set on status and position; undefined when it did not apply.
 */
export async function skipFailedStep(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    group?: string | undefined;
    state: State;
    user: string | null;
    nextStatus: ProcessStatus;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    stepWrite({
      update: {
        set: `status = $4::text, step_index = $2 + 1, attempt = 1, last_step = $3,
              failed_reason = NULL, traceback = NULL, acting_user = $6,
              last_modified_at = now(), version = version + 1`,
        where: `id = $1 AND status = ANY($8::text[]) AND step_index = $2 AND NOT ${PAUSED}`,
        returning: 'p.last_modified_at',
      },
      step: `id, $2, $3, 'skipped', $5, NULL, last_modified_at, $6, $7`,
    }),
    [
      r.id,
      r.index,
      r.name,
      r.nextStatus,
      JSON.stringify(r.state),
      r.user,
      r.group ?? null,
      REPAIRABLE_STATUSES,
    ],
  );
  return stepAndProcess(rows);
}

/**
 * Patches the state of a process whose step at `index` failed and resumes it: the patch kept as a
 * user input, a `failed` row of that step holding the patched state (the retry continues from it)
 * and naming who patched which keys, the process `resumed`. Compare-and-set like skipFailedStep.
 */
export async function patchAndResume(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    group?: string | undefined;
    patch: State;
    state: State;
    user: string | null;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    stepWrite({
      update: {
        set: `status = 'resumed', retry_at = NULL, acting_user = $6, last_modified_at = now(),
              version = version + 1`,
        where: `id = $1 AND status = ANY($8::text[]) AND step_index = $2 AND NOT ${PAUSED}`,
        returning: 'p.last_modified_at',
      },
      between: [USER_INPUT],
      step: `id, $2, $3, 'failed', $5,
              jsonb_build_object('name', 'StatePatched',
                'message', format('state patched by %s before the retry: %s', coalesce($6, 'anonymous'),
                                  (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys($4::jsonb) k))),
              last_modified_at, $6, $7`,
    }),
    [
      r.id,
      r.index,
      r.name,
      JSON.stringify(r.patch),
      JSON.stringify(r.state),
      r.user,
      r.group ?? null,
      REPAIRABLE_STATUSES,
    ],
  );
  return stepAndProcess(rows);
}

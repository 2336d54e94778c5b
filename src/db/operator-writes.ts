// Operators' writes: tasks resumed in bulk, a task deleted, a note.
import { processEventSql, type ProcessEventRow } from './events.ts';
import { PAUSED } from './fragments.ts';
import {
  RETRIED_BY_RESUME_ALL,
  TERMINAL_STATUSES,
  waitsForChildren,
  type ProcessStatus,
} from './model.ts';
import type { Queryable } from './pool.ts';

/**
 * Inside a transaction: resumes every task in a status of RETRIED_BY_RESUME_ALL that `allowed`
 * lets through, once, but no task waiting for its children (`waitsForChildren`, as a single
 * resume refuses it), unless a resume-all runs already (then null: an advisory lock held to the
 * end of the transaction decides). Returns each with the status it was resumed from and its event.
 */
export async function resumeAllTasks(
  tx: Queryable,
  user: string | null,
  allowed: (task: { id: string; workflowName: string; status: ProcessStatus }) => boolean,
): Promise<
  | {
      id: string;
      from: ProcessStatus;
      isTask: boolean;
      target: string;
      event: ProcessEventRow;
    }[]
  | null
> {
  const { rows: lock } = await tx.query<{ ok: boolean }>(
    `SELECT pg_try_advisory_xact_lock(hashtext('orchestrator.resume-all')) AS ok`,
  );
  if (!lock[0]?.ok) return null;
  const { rows: candidates } = await tx.query<{
    id: string;
    workflowName: string;
    status: ProcessStatus;
    retryAt: Date | null;
  }>(
    `SELECT id, workflow_name AS "workflowName", status, retry_at AS "retryAt"
       FROM orchestrator.processes
      WHERE is_task AND status = ANY($1::text[]) AND NOT ${PAUSED}
      ORDER BY id FOR UPDATE`,
    [RETRIED_BY_RESUME_ALL],
  );
  const ids = candidates.filter((c) => !waitsForChildren(c) && allowed(c)).map((c) => c.id);
  if (ids.length === 0) return [];
  const { rows } = await tx.query<{
    id: string;
    from: ProcessStatus;
    isTask: boolean;
    target: string;
    event: ProcessEventRow;
  }>(
    `WITH old AS (SELECT id, status FROM orchestrator.processes WHERE id = ANY($1::uuid[])),
     p AS (
       UPDATE orchestrator.processes p
          SET status = 'resumed', retry_at = NULL, last_modified_at = now(), acting_user = $2,
              version = version + 1
         FROM old WHERE p.id = old.id
       RETURNING p.id, old.status AS "from", p.is_task AS "isTask", p.target,
                 ${processEventSql('p')} AS event)
     SELECT * FROM p`,
    [ids, user],
  );
  return rows;
}

/**
 * Deletes a task that is not running and has no child that has not ended (completed or aborted),
 * with its step rows, inputs and callbacks. Returns whether it was deleted (not: it does not
 * exist, is a workflow, runs, or has children going on: they would lose their parent).
 */
export async function deleteTask(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `DELETE FROM orchestrator.processes p
      WHERE p.id = $1 AND p.is_task AND p.status <> 'running'
        AND NOT EXISTS (SELECT 1 FROM orchestrator.processes c
                         WHERE c.parent_id = p.id AND c.status <> ALL($2::text[]))`,
    [id, TERMINAL_STATUSES],
  );
  return rowCount === 1;
}

/** How many children of `id` have not ended (completed or aborted). */
export async function childrenGoingOn(db: Queryable, id: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM orchestrator.processes
      WHERE parent_id = $1 AND status <> ALL($2::text[])`,
    [id, TERMINAL_STATUSES],
  );
  return rows[0]!.n;
}

/** Sets a process's note; its event, or undefined when there is no such process. */
export async function setNote(
  db: Queryable,
  id: string,
  note: string | null,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `UPDATE orchestrator.processes p SET note = $2, version = version + 1 WHERE id = $1
     RETURNING ${processEventSql('p')} AS event`,
    [id, note],
  );
  return rows[0]?.event;
}

// The built-in tasks' writes: a safety net and clean-up, not the normal path.
import { RELEASE_LEASE, retryDue } from './fragments.ts';
import type { Queryable } from './pool.ts';

/**
 * Resumes `waiting` processes whose retry is overdue by `overdueSeconds` (the timekeeper or their
 * job should have run them): `resumed`, for the next sweep. Returns their ids.
 */
export async function resumeOverdueRetries(
  db: Queryable,
  overdueSeconds: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE orchestrator.processes p
        SET status = 'resumed', retry_at = NULL, version = version + 1,
            last_modified_at = now() - interval '1 hour'
      WHERE ${retryDue('p', '$1')}
      RETURNING id`,
    [overdueSeconds],
  );
  return rows.map((r) => r.id);
}

/**
 * Takes the leases that expired more than `expiredSeconds` ago from their dead runners: the
 * process `resumed`, for the next sweep. Returns their ids.
 */
export async function releaseAbandonedLeases(
  db: Queryable,
  expiredSeconds: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE orchestrator.processes
        SET status = 'resumed', ${RELEASE_LEASE}, version = version + 1,
            last_modified_at = now() - interval '1 hour'
      WHERE status = 'running' AND lease_expires_at < now() - make_interval(secs => $1)
      RETURNING id`,
    [expiredSeconds],
  );
  return rows.map((r) => r.id);
}

/**
 * Deletes up to `limit` tasks that completed more than `days` ago, with their step rows, inputs
 * and callbacks; rows another transaction holds are left for the next batch. Returns how many.
 */
export async function deleteCompletedTasks(
  db: Queryable,
  days: number,
  limit: number,
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM orchestrator.processes WHERE id IN (
       SELECT id FROM orchestrator.processes
        WHERE status = 'completed' AND is_task AND last_modified_at < now() - make_interval(days => $1)
        LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [days, limit],
  );
  return rowCount ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Repairs of a failed step: skip it, or patch the state before retrying it

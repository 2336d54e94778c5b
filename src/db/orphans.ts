// What a runner should pick up (threadpool sweeper): processes whose runner died first, then the
// backlog that was never started or was resumed without running.
import { STARTABLE_STATUSES } from './model.ts';
import type { Queryable } from './pool.ts';

export interface Orphan {
  id: string;
  /** `running` with an expired lease: its runner died mid-way (else `created`/`resumed`). */
  leaseExpired: boolean;
}

/**
 * Up to `limit` processes to pick up: first those `running` with an expired lease (longest
 * expired first), then those `created`/`resumed` for longer than `olderThanSeconds`, and those
 * `waiting` whose retry is due by as long (oldest first). Expired leases come first so that a large backlog of never-started processes cannot
 * push them past the limit. Each branch reads only its statuses through processes_status_idx and
 * sorts what it finds there (few rows are running; the backlog is what it is), never the table.
 */
export async function findOrphanRows(
  db: Queryable,
  olderThanSeconds: number,
  limit: number,
): Promise<Orphan[]> {
  const { rows } = await db.query<Orphan>(
    `SELECT id, rank = 0 AS "leaseExpired" FROM (
       (SELECT id, 0 AS rank, lease_expires_at AS at FROM orchestrator.processes
         WHERE status = 'running' AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT $2)
       UNION ALL
       (SELECT id, 1 AS rank, last_modified_at AS at FROM orchestrator.processes
         WHERE status = ANY($3::text[])
           AND last_modified_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM orchestrator.resource_lock_waiters w
                            WHERE w.process_id = processes.id)
         ORDER BY last_modified_at LIMIT $2)
       UNION ALL
       (SELECT id, 1 AS rank, retry_at AS at FROM orchestrator.processes
         WHERE status = 'waiting' AND retry_at < now() - make_interval(secs => $1)
         ORDER BY retry_at LIMIT $2)) o
      ORDER BY rank, at LIMIT $2`,
    [olderThanSeconds, limit, STARTABLE_STATUSES],
  );
  return rows;
}

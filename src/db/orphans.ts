// What a runner should pick up (threadpool sweeper): processes whose runner died first, then the
// backlog that was never started or was resumed without running.
import { runnableWays } from './fragments.ts';
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
  const ways = runnableWays('p', '$3', '$1');
  const { rows } = await db.query<Orphan>(
    `SELECT id, rank = 0 AS "leaseExpired" FROM (
       (SELECT p.id, 0 AS rank, p.lease_expires_at AS at FROM orchestrator.processes p
         WHERE ${ways.leaseExpired}
         ORDER BY p.lease_expires_at LIMIT $2)
       UNION ALL
       (SELECT p.id, 1 AS rank, p.last_modified_at AS at FROM orchestrator.processes p
         WHERE ${ways.startable}
         ORDER BY p.last_modified_at LIMIT $2)
       UNION ALL
       (SELECT p.id, 1 AS rank, p.retry_at AS at FROM orchestrator.processes p
         WHERE ${ways.retryDue}
         ORDER BY p.retry_at LIMIT $2)) o
      ORDER BY rank, at LIMIT $2`,
    [olderThanSeconds, limit, STARTABLE_STATUSES],
  );
  return rows;
}

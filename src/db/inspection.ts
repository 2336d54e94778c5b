// Reads of the inspection views (sql/002_workers.sql) for `npm run queues`.
import type { Queryable } from './pool.ts';

export interface Inspection {
  queues: Record<string, unknown>[];
  processes: Record<string, unknown>[];
  stuck: Record<string, unknown>[];
}

export async function inspect(db: Queryable, stuckLimit = 50): Promise<Inspection> {
  const [queues, processes, stuck] = await Promise.all([
    db.query(
      `SELECT queue, state, jobs, oldest, date_trunc('second', oldest_age)::text AS "oldestAge"
         FROM orchestrator.queue_overview ORDER BY queue, state`,
    ),
    db.query(
      `SELECT workflow, is_task AS "isTask", status, processes, oldest_started AS "oldestStarted",
              last_modified AS "lastModified"
         FROM orchestrator.process_overview ORDER BY workflow, status`,
    ),
    db.query(
      `SELECT id, workflow, status, reason, last_step AS "lastStep", lease_owner AS "leaseOwner",
              lease_expires_at AS "leaseExpiresAt", last_modified_at AS "lastModifiedAt"
         FROM orchestrator.stuck_processes ORDER BY last_modified_at LIMIT $1`,
      [stuckLimit],
    ),
  ]);
  return { queues: queues.rows, processes: processes.rows, stuck: stuck.rows };
}

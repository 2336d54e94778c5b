// Reads of the inspection views (sql/002_workers.sql) for `npm run queues`.
import type { Queryable } from './pool.ts';

export interface Inspection {
  queues: Record<string, unknown>[];
  processes: Record<string, unknown>[];
  stuck: Record<string, unknown>[];
  schedules: { name: string; cron: string; timezone: string; [k: string]: unknown }[];
  locks: Record<string, unknown>[];
  retries: Record<string, unknown>[];
}

export async function inspect(db: Queryable, stuckLimit = 50): Promise<Inspection> {
  const [queues, processes, stuck, schedules, locks, retries] = await Promise.all([
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
    db.query<Inspection['schedules'][number]>(
      `SELECT name, workflow, cron, timezone, overlap, last_started AS "lastStarted"
         FROM orchestrator.schedule_overview ORDER BY name`,
    ),
    db.query(
      `SELECT key, holder, workflow, status, acquired_at AS "acquiredAt", queued
         FROM orchestrator.resource_lock_overview ORDER BY key LIMIT $1`,
      [stuckLimit],
    ),
    db.query(
      `SELECT id, workflow, last_step AS "lastStep", attempt, retry_at AS "retryAt",
              failed_reason AS "failedReason"
         FROM orchestrator.waiting_retries ORDER BY retry_at LIMIT $1`,
      [stuckLimit],
    ),
  ]);
  return {
    queues: queues.rows,
    processes: processes.rows,
    stuck: stuck.rows,
    schedules: schedules.rows,
    locks: locks.rows,
    retries: retries.rows,
  };
}

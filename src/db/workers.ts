// Runtime queries on orchestrator.workers (the registry of worker processes) and the job counts
// that the worker status shows. Parameters only; columns aliased to camelCase.
import type { Queryable } from './pool.ts';

export interface WorkerRegistration {
  id: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number;
  heartbeatSeconds: number;
}

export interface WorkerRow extends WorkerRegistration {
  startedAt: Date;
  heartbeatAt: Date;
}

/** Registers a starting worker (or re-registers it after a database restart). */
export async function registerWorker(db: Queryable, w: WorkerRegistration): Promise<void> {
  await db.query(
    `INSERT INTO orchestrator.workers (id, hostname, pid, queues, concurrency, heartbeat_seconds)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL`,
    [w.id, w.hostname, w.pid, w.queues, w.concurrency, w.heartbeatSeconds],
  );
}

/** Records that the worker is alive; false when its row is gone (then register again). */
export async function workerHeartbeat(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE orchestrator.workers SET heartbeat_at = now(), stopped_at = NULL WHERE id = $1`,
    [id],
  );
  return rowCount === 1;
}

/** Marks a worker stopped (graceful shutdown). */
export async function markWorkerStopped(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE orchestrator.workers SET stopped_at = now() WHERE id = $1`, [id]);
}

/** Workers that heartbeat within three of their intervals and have not stopped. */
export async function onlineWorkers(db: Queryable): Promise<WorkerRow[]> {
  const { rows } = await db.query<WorkerRow>(
    `SELECT id, hostname, pid, queues, concurrency, heartbeat_seconds AS "heartbeatSeconds",
            started_at AS "startedAt", heartbeat_at AS "heartbeatAt"
       FROM orchestrator.workers
      WHERE stopped_at IS NULL
        AND heartbeat_at > now() - make_interval(secs => 3 * heartbeat_seconds)
      ORDER BY started_at`,
  );
  return rows;
}

/** Deletes registrations that stopped or went silent more than a day ago. */
export async function pruneWorkers(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM orchestrator.workers WHERE heartbeat_at < now() - interval '1 day'`);
}

export interface QueueCounts {
  name: string;
  /** Waiting to be fetched (created, or failed and due to retry). */
  queued: number;
  /** Fetched by a worker, whose process runs now. */
  active: number;
}

/** Queued and active jobs of each named queue (zero for a queue without jobs). */
export async function queueCounts(db: Queryable, names: readonly string[]): Promise<QueueCounts[]> {
  const { rows } = await db.query<QueueCounts>(
    `SELECT q.name,
            count(j.id) FILTER (WHERE j.state IN ('created', 'retry')) AS queued,
            count(j.id) FILTER (WHERE j.state = 'active') AS active
       FROM unnest($1::text[]) WITH ORDINALITY AS q(name, ord)
       LEFT JOIN pgboss.job j ON j.name = q.name AND j.state IN ('created', 'retry', 'active')
      GROUP BY q.name, q.ord ORDER BY q.ord`,
    [names],
  );
  return rows;
}

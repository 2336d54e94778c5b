// Processes and their pg-boss jobs (worker mode): which runnable processes have no job that will
// run them. A job is "live" when it is waiting (created, retry), or active and fetched after the
// process last needed one: a worker claims a process right after fetching its job, so an active job
// older than that belongs to a worker that died.
import { createHash } from 'node:crypto';
import { runnable, runnableWays } from './fragments.ts';
import { STARTABLE_STATUSES, type ProcessStatus } from './model.ts';
import type { Queryable } from './pool.ts';

export interface Unqueued {
  id: string;
  status: ProcessStatus;
  isTask: boolean;
  target: string;
  createdBy: string | null;
}

/** Runnable, and so for `graceSeconds` ($1) unless its lease expired: it needs a job. */
const NEEDS_JOB = runnable('p', '$4', '$1');
/** The same, as the branches `findUnqueued` reads one by one. */
const WAYS = runnableWays('p', '$4', '$1');

const NO_LIVE_JOB = `NOT EXISTS (
  SELECT 1 FROM pgboss.job j
   WHERE j.data->>'processId' = p.id::text
     AND (j.state IN ('created', 'retry')
          OR (j.state = 'active' AND j.started_on > CASE WHEN p.status = 'running'
                THEN p.lease_expires_at ELSE now() - make_interval(secs => $2) END)))`;

const COLUMNS = `p.id, p.status, p.is_task AS "isTask", p.target, p.created_by AS "createdBy"`;

/**
 * Candidates for a new job, without a live job: first those running with an expired lease
 * (longest expired first: their runner died mid-way, so they go before any backlog), then those
 * created/resumed for longer than `graceSeconds`, and waiting ones whose retry is due by as long
 * (their job was lost), oldest first. Each branch reads only its statuses through an index.
 */
export async function findUnqueued(
  db: Queryable,
  o: { graceSeconds: number; leaseSeconds: number; limit: number },
): Promise<Unqueued[]> {
  const { rows } = await db.query<Unqueued>(
    `SELECT id, status, "isTask", target, "createdBy" FROM (
       (SELECT ${COLUMNS}, 0 AS rank, p.lease_expires_at AS at FROM orchestrator.processes p
         WHERE ${WAYS.leaseExpired} AND ${NO_LIVE_JOB}
         ORDER BY p.lease_expires_at LIMIT $3)
       UNION ALL
       (SELECT ${COLUMNS}, 1 AS rank, p.last_modified_at AS at FROM orchestrator.processes p
         WHERE ${WAYS.startable} AND ${NO_LIVE_JOB}
         ORDER BY p.last_modified_at LIMIT $3)
       UNION ALL
       (SELECT ${COLUMNS}, 1 AS rank, p.retry_at AS at FROM orchestrator.processes p
         WHERE ${WAYS.retryDue} AND ${NO_LIVE_JOB}
         ORDER BY p.retry_at LIMIT $3)) u
      ORDER BY rank, at LIMIT $3`,
    [o.graceSeconds, o.leaseSeconds, o.limit, STARTABLE_STATUSES],
  );
  return rows;
}

/**
 * Inside a transaction: locks the process row (skipping it when another sweeper holds it), then
 * checks again, in a statement that sees everything committed before the lock was taken, that it
 * still has no live job. Returns the process when the caller should send one.
 */
export async function lockUnqueued(
  tx: Queryable,
  id: string,
  o: { graceSeconds: number; leaseSeconds: number },
): Promise<Unqueued | undefined> {
  const locked = await tx.query(
    `SELECT 1 FROM orchestrator.processes WHERE id = $1 FOR UPDATE SKIP LOCKED`,
    [id],
  );
  if (locked.rowCount !== 1) return undefined;
  const { rows } = await tx.query<Unqueued>(
    `SELECT ${COLUMNS} FROM orchestrator.processes p
      WHERE p.id = $3 AND ${NEEDS_JOB} AND ${NO_LIVE_JOB}`,
    [o.graceSeconds, o.leaseSeconds, id, STARTABLE_STATUSES],
  );
  return rows[0];
}

/** What the resume queue of a process needs to know, read inside the transaction that requeues it. */
export async function routingOf(
  tx: Queryable,
  id: string,
): Promise<{ isTask: boolean; target: string } | undefined> {
  const { rows } = await tx.query<{ isTask: boolean; target: string }>(
    `SELECT is_task AS "isTask", target FROM orchestrator.processes WHERE id = $1`,
    [id],
  );
  return rows[0];
}

/**
 * Active jobs of a process that `lockUnqueued` found without a live job: fetched by a worker that
 * died or lost the process since. They are settled when the process is queued again, so that
 * "active" counts only jobs somebody works on.
 */
export async function staleActiveJobs(
  tx: Queryable,
  processId: string,
): Promise<{ name: string; id: string }[]> {
  const { rows } = await tx.query<{ name: string; id: string }>(
    `SELECT name, id FROM pgboss.job WHERE data->>'processId' = $1 AND state = 'active'`,
    [processId],
  );
  return rows;
}

/** Jobs not yet started of these processes: the scheduled retries of waiting ones. */
export async function scheduledJobs(
  tx: Queryable,
  processIds: readonly string[],
): Promise<{ name: string; id: string }[]> {
  const { rows } = await tx.query<{ name: string; id: string }>(
    `SELECT name, id FROM pgboss.job
      WHERE data->>'processId' = ANY($1::text[]) AND state IN ('created', 'retry')`,
    [processIds],
  );
  return rows;
}

/**
 * Deletes a pg-boss schedule (queue `queue`, key `key`) in one statement: whether a row was deleted
 * decides, so of two deletes at once exactly one finds it (pg-boss's own `unschedule` does not
 * say, and a read before it would let both see the row).
 */
export async function deleteSchedule(db: Queryable, queue: string, key: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `DELETE FROM pgboss.schedule WHERE name = $1 AND COALESCE(key, '') = $2`,
    [queue, key],
  );
  return (rowCount ?? 0) > 0;
}

/** Statement names by text: pg-boss's statements, prepared once per connection. */
const statementNames = new Map<string, string>();
const statementName = (text: string): string => {
  let name = statementNames.get(text);
  if (!name) {
    name = `pgboss-${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    if (statementNames.size < 1_000) statementNames.set(text, name);
  }
  return name;
};

/**
 * pg-boss's `db` option that runs its statements on our transaction's client, as named prepared
 * statements: its fetch and complete are large statements, parsed and planned on every call
 * otherwise (measured on an idle database: fetch 1.8 ms, complete 1.25 ms of a 4.6 ms hand-off).
 */
export function inTransaction(tx: Queryable) {
  return {
    executeSql: (text: string, values?: unknown[]) =>
      tx.query({ name: statementName(text), text, values: values ?? [] }),
  };
}

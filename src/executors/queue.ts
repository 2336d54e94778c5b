// The API side of worker mode: processes are recorded and their job is sent in the same
// transaction; a sweeper re-queues what a crash or an outage left without a job. Nothing runs here.
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../config/logger.ts';
import {
  findUnqueued,
  inTransaction,
  lockUnqueued,
  routingOf,
  scheduledJobs,
  staleActiveJobs,
} from '../db/jobs.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { dispatchOf, type Dispatch, type Dispatcher } from '../engine/dispatch.ts';
import type { EngineMetrics } from '../engine/metrics.ts';
import { queueFor, type JobData } from './boss.ts';

type JobOf = Pick<Dispatch, 'processId' | 'user' | 'isTask' | 'target' | 'kind'>;

/**
 * Sends the jobs of `jobs` inside `tx`, one insert per queue: a rollback takes them back with the
 * process changes. Throws when a queue does not exist (pg-boss would insert nothing, silently).
 * `priority` (an integer, default 0): workers fetch the jobs of a queue highest priority first,
 * then oldest first.
 */
export async function sendJobs(
  boss: PgBoss,
  tx: Queryable,
  jobs: readonly JobOf[],
  targetQueues: readonly string[],
  options: { priority?: number; startAfter?: Date } = {},
): Promise<void> {
  const byQueue = new Map<string, { data: JobData; priority?: number; startAfter?: Date }[]>();
  for (const job of jobs) {
    const queue = queueFor(job, targetQueues);
    const data: JobData = { processId: job.processId, user: job.user };
    // pg-boss refuses keys whose value is undefined.
    const row = {
      data,
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.startAfter === undefined ? {} : { startAfter: options.startAfter }),
    };
    byQueue.set(queue, [...(byQueue.get(queue) ?? []), row]);
  }
  for (const [queue, rows] of byQueue) {
    const ids = await boss.insert(queue, rows, { db: inTransaction(tx), returnId: true });
    if (ids?.length !== rows.length)
      throw new Error(`Queue ${queue} does not exist: ${rows.length} job(s) not sent`);
  }
}

/** Sends one job (see sendJobs). */
export function sendJob(
  boss: PgBoss,
  tx: Queryable,
  job: JobOf,
  targetQueues: readonly string[],
  options: { priority?: number; startAfter?: Date } = {},
): Promise<void> {
  return sendJobs(boss, tx, [job], targetQueues, options);
}

/** For RunnerHooks.scheduleRetry: the retry of a waiting process, a resume job that starts at `at`. */
export function retryInTransaction(boss: PgBoss, targetQueues: readonly string[]) {
  return async (
    tx: Queryable,
    processId: string,
    createdBy: string | null,
    at: Date,
  ): Promise<void> => {
    const routing = await routingOf(tx, processId);
    if (!routing) return;
    await sendJob(boss, tx, dispatchOf('resume', processId, createdBy, routing), targetQueues, {
      startAfter: at,
    });
  };
}

/**
 * Resumes of waiting processes replace their scheduled retry: its job is cancelled in the resume's
 * transaction, so that the process has one job, not two.
 */
async function cancelScheduledRetries(
  boss: PgBoss,
  tx: Queryable,
  jobs: readonly Dispatch[],
): Promise<void> {
  const ids = jobs.filter((j) => j.from === 'waiting').map((j) => j.processId);
  if (ids.length === 0) return;
  for (const job of await scheduledJobs(tx, ids)) {
    await boss.cancel(job.name, job.id, { db: inTransaction(tx) });
  }
}

/** For RunnerHooks.requeue: a process given back on shutdown goes to its resume queue at once. */
export function requeueInTransaction(boss: PgBoss, targetQueues: readonly string[]) {
  return async (tx: Queryable, processId: string, createdBy: string | null): Promise<void> => {
    const routing = await routingOf(tx, processId);
    if (!routing) return;
    await sendJob(boss, tx, dispatchOf('resume', processId, createdBy, routing), targetQueues);
  };
}

export interface QueueExecutorOptions {
  pool: Pool;
  boss: PgBoss;
  targetQueues: readonly string[];
  leaseSeconds: number;
  logger: Logger;
  /** How often to look for processes without a job. Default: lease / 2. */
  sweepIntervalMs?: number;
  metrics?: EngineMetrics;
}

export interface QueueExecutor {
  dispatcher: Dispatcher;
  /** Re-queues what was left behind, then sweeps periodically. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One sweep now; resolves with the number of jobs sent. */
  sweep(): Promise<number>;
}

/**
 * Queues one process that needs a job and has none (checked under its row lock, so two sweepers
 * never both send one): jobs of a dead worker settled first, a process whose runner died sent
 * ahead of its queue's backlog. Returns the status it was queued from, or undefined.
 */
export function queueIfUnqueuedWith(boss: PgBoss, pool: Pool, targetQueues: readonly string[]) {
  return (id: string, window: { graceSeconds: number; leaseSeconds: number }) =>
    withTransaction(pool, async (tx) => {
      const p = await lockUnqueued(tx, id, window);
      if (!p) return undefined;
      // A waiting process here is due and has no job: its retry job was lost.
      const kind: Dispatch['kind'] = p.status === 'created' ? 'new' : 'resume';
      const job = { processId: p.id, user: p.createdBy, isTask: p.isTask, target: p.target, kind };
      // Jobs of a worker that died holding the process: settled, so "active" means running.
      for (const stale of await staleActiveJobs(tx, p.id)) {
        await boss.cancel(stale.name, stale.id, { db: inTransaction(tx) });
      }
      // Its runner died mid-way: fetched before the backlog of the queue (priority 0).
      await sendJob(boss, tx, job, targetQueues, { priority: p.status === 'running' ? 10 : 0 });
      return p.status;
    });
}

export function createQueueExecutor(opts: QueueExecutorOptions): QueueExecutor {
  const { pool, boss, targetQueues, leaseSeconds } = opts;
  const logger = opts.logger.child({ component: 'queue' });
  // A process that was just created has its job in the same transaction: give the sweeper no
  // reason to look at it before it is a few seconds old.
  const window = {
    graceSeconds: Math.max(5, leaseSeconds / 2),
    leaseSeconds,
  };
  const queueIfUnqueued = queueIfUnqueuedWith(boss, pool, targetQueues);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function sweepOnce(): Promise<number> {
    let sent = 0;
    // Expired leases first (see findUnqueued), each sent with a higher priority.
    const candidates = await findUnqueued(pool, { ...window, limit: 500 });
    for (const c of candidates) {
      const from = await queueIfUnqueued(c.id, window);
      if (from === 'running') opts.metrics?.leasesRecovered(1);
      if (from) sent++;
    }
    if (sent) logger.info('re-queued processes without a job', { count: sent });
    return sent;
  }

  function sweep(): Promise<number> {
    running ??= sweepOnce()
      .catch((err: unknown) => {
        logger.warn('sweep failed', { err });
        return 0;
      })
      .finally(() => (running = undefined));
    return running;
  }

  return {
    dispatcher: {
      async dispatch(tx, jobs) {
        await cancelScheduledRetries(boss, tx, jobs);
        await sendJobs(boss, tx, jobs, targetQueues);
      },
      afterCommit: () => {},
      // The worker running it notices at its next heartbeat: the abort revoked its lease.
      aborted: () => {},
      // A parent whose last child ended: queued now rather than at the next sweep.
      nudge(processId) {
        queueIfUnqueued(processId, { graceSeconds: 0, leaseSeconds }).catch((err: unknown) =>
          logger.warn('could not queue a process; the next sweep will', { processId, err }),
        );
      },
      // While paused, workers completed the jobs of processes they could not claim, and processes
      // given back for the lock have none: jobs for all that are left without one, in `tx`.
      async unpause(tx) {
        const left = await findUnqueued(tx, { graceSeconds: 0, leaseSeconds, limit: 10_000 });
        const jobs = left.map((p): Dispatch => ({
          processId: p.id,
          user: p.createdBy,
          isTask: p.isTask,
          target: p.target,
          kind: p.status === 'created' ? 'new' : 'resume',
        }));
        await sendJobs(boss, tx, jobs, targetQueues);
        return () => {};
      },
    },
    async start() {
      await sweep();
      const every = opts.sweepIntervalMs ?? (leaseSeconds * 1000) / 2;
      timer = setInterval(() => void sweep(), every);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
    sweep,
  };
}

// pg-boss for worker mode: construction, queue names and routing. Job data is only
// `{ processId, user }`; the process row is the truth, a job is a wake-up call for one process.
import { PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Logger } from '../config/logger.ts';
import type { Dispatch } from '../engine/dispatch.ts';

export const WORKFLOW_QUEUES = ['new_workflows', 'resume_workflows'] as const;
export const TASK_QUEUES = ['new_tasks', 'resume_tasks'] as const;
/** The queue of schedule ticks (see scheduler.ts); no worker consumes it. */
export const SCHEDULE_QUEUE = 'scheduled_starts';
/** The queues of processes that ran before (resumed, given back, or found with an expired lease). */
export const RESUME_QUEUES: ReadonlySet<string> = new Set([WORKFLOW_QUEUES[1], TASK_QUEUES[1]]);

/** The payload of every job. */
export const jobDataSchema = z.object({ processId: z.uuid(), user: z.string().nullable() });
export type JobData = z.infer<typeof jobDataSchema>;

/** Every queue of this deployment: the four standard ones, then one per configured target. */
export function allQueues(targetQueues: readonly string[]): string[] {
  return [...WORKFLOW_QUEUES, ...TASK_QUEUES, ...targetQueues];
}

/** The queue a process goes to: its target's own queue when configured, else by kind. */
export function queueFor(
  job: Pick<Dispatch, 'isTask' | 'target' | 'kind'>,
  targetQueues: readonly string[],
): string {
  if (targetQueues.includes(job.target)) return job.target;
  if (job.isTask) return job.kind === 'new' ? 'new_tasks' : 'resume_tasks';
  return job.kind === 'new' ? 'new_workflows' : 'resume_workflows';
}

export class UnknownQueueError extends Error {
  override name = 'UnknownQueueError';
}

/**
 * The queues a worker consumes, from `--queues`: `workflows`, `tasks`, explicit names
 * (comma-separated), or nothing for all of them.
 */
export function resolveQueues(spec: string | undefined, targetQueues: readonly string[]): string[] {
  const valid = allQueues(targetQueues);
  if (spec === undefined || spec.trim() === '') return valid;
  const out = new Set<string>();
  const unknown: string[] = [];
  for (const part of spec.split(',').map((s) => s.trim())) {
    if (part === '') continue;
    if (part === 'workflows') WORKFLOW_QUEUES.forEach((q) => out.add(q));
    else if (part === 'tasks') TASK_QUEUES.forEach((q) => out.add(q));
    else if (part === 'all') valid.forEach((q) => out.add(q));
    else if (valid.includes(part)) out.add(part);
    else unknown.push(part);
  }
  if (unknown.length || out.size === 0) {
    throw new UnknownQueueError(
      `Unknown queue ${unknown.map((u) => JSON.stringify(u)).join(', ') || '(none given)'}. ` +
        `Valid: workflows, tasks, all, ${valid.join(', ')}` +
        (targetQueues.length ? '' : ' (per-target queues come from TARGET_QUEUES)'),
    );
  }
  return [...out];
}

export interface BossOptions {
  connectionString: string;
  logger: Logger;
  /** Shown in pg_stat_activity. */
  applicationName: string;
  /** Connections in pg-boss's own pool. Default 4. */
  max?: number;
  /** Run pg-boss maintenance (expiry, retention) in this instance. Default true. */
  supervise?: boolean;
  /** Run pg-boss's cron pass (files schedule ticks as jobs) in this instance. Default false. */
  schedule?: boolean;
}

/**
 * A pg-boss instance for sending and fetching jobs. Workers are woken by the orchestrator's own
 * events (a `created` or `resumed` process, published after its commit), not by pg-boss's NOTIFY:
 * that one is sent inside the transaction that inserts the job, and every notifying commit
 * waits for the WAL flushes of the others. Its errors (database restarts included) are logged,
 * never fatal: pg-boss reconnects by itself.
 */
export function createBoss(opts: BossOptions): PgBoss {
  const boss = new PgBoss({
    connectionString: opts.connectionString,
    application_name: opts.applicationName,
    max: opts.max ?? 4,
    useListenNotify: false,
    supervise: opts.supervise ?? true,
    schedule: opts.schedule ?? false,
    // A tick is filed within a few seconds of its time (pg-boss's default pass is every 30 s).
    cronMonitorIntervalSeconds: 5,
    cronWorkerIntervalSeconds: 2,
    migrate: false,
    connectionTimeoutMillis: 5_000,
  });
  const logger = opts.logger.child({ component: 'pg-boss' });
  let lastError = 0;
  boss.on('error', (err: Error) => {
    // During an outage every fetch fails: one line per 5 s is enough.
    if (Date.now() - lastError < 5_000) return;
    lastError = Date.now();
    logger.warn('queue error', { err: err.message });
  });
  boss.on('warning', (w: { message: string }) =>
    logger.warn('queue warning', { message: w.message }),
  );
  return boss;
}

/**
 * How long one job may stay active: the whole run of a process (until it stops). Crash recovery
 * does not rely on it (the lease does), so it is generous: one day.
 */
const JOB_EXPIRE_SECONDS = 24 * 60 * 60;

/** Creates the queues that do not exist yet (a queue must exist before `send`). */
export async function createQueues(boss: PgBoss, names: readonly string[]): Promise<void> {
  const existing = new Map((await boss.getQueues(names as string[])).map((q) => [q.name, q]));
  for (const name of names) {
    const queue = existing.get(name);
    if (queue) {
      // Created by an earlier version with NOTIFY inside every send: off (see createBoss).
      if (queue.notify) await boss.updateQueue(name, { notify: false });
      continue;
    }
    try {
      await boss.createQueue(name, {
        notify: false,
        expireInSeconds: JOB_EXPIRE_SECONDS,
        // A handler that failed (database outage while claiming) is retried with backoff.
        retryLimit: 5,
        retryDelay: 1,
        retryBackoff: true,
        retryDelayMax: 30,
      });
    } catch (err) {
      // Another instance created it at the same moment.
      if (!(await boss.getQueue(name))) throw err;
    }
  }
}

/**
 * The queue of schedule ticks (see scheduler.ts): a tick whose instance died while starting it
 * is fetched again after a minute, not a day.
 */
export async function createScheduleQueue(boss: PgBoss): Promise<void> {
  if (await boss.getQueue(SCHEDULE_QUEUE)) return;
  try {
    await boss.createQueue(SCHEDULE_QUEUE, {
      notify: false,
      expireInSeconds: 60,
      retryLimit: 10,
      retryDelay: 5,
      retryBackoff: true,
      retryDelayMax: 60,
    });
  } catch (err) {
    if (!(await boss.getQueue(SCHEDULE_QUEUE))) throw err;
  }
}

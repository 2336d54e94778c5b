// The worker side of worker mode: consumes pg-boss queues and runs each job's process with the
// same runner as the threadpool mode (claim with lease + fencing token, heartbeat, fenced commits).
// A job is completed when its process stops (completed, suspended, failed, …), or at once when the
// process is running elsewhere or is terminal.
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../config/logger.ts';
import type { Pool } from '../db/pool.ts';
import type { Registry } from '../engine/registry.ts';
import { createRunner, type Runner } from '../engine/runner.ts';
import type { StepPool } from '../engine/step-pool.ts';
import { jobDataSchema } from './boss.ts';
import { requeueInTransaction } from './queue.ts';

export interface WorkerExecutorOptions {
  pool: Pool;
  boss: PgBoss;
  registry: Registry;
  steps: StepPool;
  /** Queues to consume. */
  queues: readonly string[];
  /** Processes run at once by this worker, whatever queues they come from. */
  concurrency: number;
  /** Longest wait between two looks at idle queues when no wake-up came. Default 2000 ms. */
  pollIntervalMs?: number;
  targetQueues: readonly string[];
  leaseSeconds: number;
  /** Lease owner shown in `lease_owner`, e.g. `worker:host:pid`. */
  owner: string;
  logger: Logger;
}

export type WorkerState = 'created' | 'running' | 'stopping' | 'stopped';

export interface WorkerExecutor {
  runner: Runner;
  state(): WorkerState;
  /** Starts consuming; resolves once its slots are fetching. */
  start(): Promise<void>;
  /**
   * A job may be waiting in `queue` (a process was created or resumed there): one idle slot looks
   * at once, that queue first. Without a queue (notifications may have been missed), every idle
   * slot looks.
   */
  wake(queue?: string): void;
  /**
   * Stops fetching, lets running steps finish for up to `timeoutMs`, and gives back processes that
   * are mid-way (re-queued at once). Idempotent.
   */
  stop(timeoutMs: number): Promise<void>;
}

export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
}

export function createWorkerExecutor(opts: WorkerExecutorOptions): WorkerExecutor {
  const { boss, queues, concurrency } = opts;
  const logger = opts.logger.child({ component: 'worker' });
  const runner = createRunner({
    pool: opts.pool,
    registry: opts.registry,
    steps: opts.steps,
    owner: opts.owner,
    leaseSeconds: opts.leaseSeconds,
    logger,
    requeue: requeueInTransaction(boss, opts.targetQueues),
  });
  let state: WorkerState = 'created';
  let stopping: Promise<void> | undefined;

  async function handle(queue: string, data: unknown): Promise<void> {
    const parsed = jobDataSchema.safeParse(data);
    if (!parsed.success) {
      logger.error('job without a valid process id: dropped', { queue, data });
      return;
    }
    const { processId } = parsed.data;
    // Fetched while stopping: fail the job so that it is retried by another worker.
    if (state !== 'running') throw new ShuttingDownError('worker is shutting down');
    const result = await runner.run(processId);
    if (result === 'not_claimed' && state !== 'running')
      throw new ShuttingDownError('worker is shutting down');
    logger.debug('job done', { queue, processId, result });
  }

  const pollIntervalMs = opts.pollIntervalMs ?? 2_000;
  /** Idle slots, each waiting to be woken with the queue to look at first. */
  let idleSlots: ((hint: string | undefined) => void)[] = [];
  /**
   * Wake-ups that found no idle slot (every slot busy, or one between a fetch that found nothing
   * and its sleep): the next slot about to sleep looks again instead, so no job waits for a poll.
   */
  const missed: string[] = [];
  /** Sleeps until woken (resolving with the hinted queue) or `ms` passed. */
  const idle = (ms: number) =>
    new Promise<string | undefined>((resolve) => {
      if (missed.length > 0) {
        resolve(missed.shift());
        return;
      }
      const wakeUp = (hint: string | undefined) => {
        clearTimeout(t);
        idleSlots = idleSlots.filter((f) => f !== wakeUp);
        resolve(hint);
      };
      const t = setTimeout(() => wakeUp(undefined), ms);
      idleSlots.push(wakeUp);
    });
  const consumesTargetQueues = queues.some((q) => opts.targetQueues.includes(q));

  /** Fetches one job: from `first` when given, then from the queues in turn from `from`. */
  async function fetchOne(from: number, first: string | undefined) {
    const order = queues.map((_, i) => queues[(from + i) % queues.length]!);
    if (first && queues.includes(first)) order.unshift(first);
    for (const queue of new Set(order)) {
      const [job] = await boss.fetch(queue, { batchSize: 1 });
      if (job) return { queue, job };
    }
    return undefined;
  }

  /**
   * One slot runs one process at a time; a worker has `concurrency` slots shared by all its
   * queues, so it never runs more than that many processes at once. A slot that finishes a job
   * fetches again at once; an idle one waits for a wake-up (NOTIFY of a created or resumed
   * process) or, as a fallback, the polling interval.
   */
  async function slot(index: number): Promise<void> {
    let backoff = 250;
    let hint: string | undefined;
    for (let turn = index; state === 'running'; turn++) {
      let got: Awaited<ReturnType<typeof fetchOne>>;
      try {
        got = await fetchOne(turn % queues.length, hint);
        backoff = 250;
      } catch (err) {
        logger.warn('fetching jobs failed; retrying', { err });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5_000);
        continue;
      }
      if (!got) {
        hint = await idle(pollIntervalMs);
        continue;
      }
      hint = undefined;
      const { queue, job } = got;
      try {
        await handle(queue, job.data);
        await boss.complete(queue, job.id);
      } catch (err) {
        const e = err as Error;
        await boss
          .fail(queue, job.id, { name: e.name, message: e.message })
          .catch((failErr: unknown) => logger.warn('could not fail a job', { err: failErr }));
      }
    }
  }
  let slots: Promise<void>[] = [];

  return {
    runner,
    state: () => state,
    async start() {
      if (state !== 'created') return;
      state = 'running';
      slots = Array.from({ length: concurrency }, (_, i) => slot(i));
      logger.info('consuming', { queues, concurrency });
    },
    wake(queue) {
      // One job, one slot: waking every idle slot would send them all to fetch at once.
      if (queue === undefined) {
        for (const wakeUp of idleSlots) wakeUp(undefined);
      } else if (queues.includes(queue) || consumesTargetQueues) {
        const wakeUp = idleSlots[0];
        if (wakeUp) wakeUp(queue);
        else if (missed.length < concurrency) missed.push(queue);
      }
    },
    stop(timeoutMs) {
      stopping ??= (async () => {
        state = 'stopping';
        for (const wakeUp of idleSlots) wakeUp(undefined);
        await runner.stop(timeoutMs);
        await Promise.all(slots);
        state = 'stopped';
      })();
      return stopping;
    },
  };
}

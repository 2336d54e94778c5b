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
  /** Processes run at once per queue. */
  concurrency: number;
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
  /** Starts consuming; resolves once every queue has its handlers. */
  start(): Promise<void>;
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

  /**
   * One slot: a pg-boss worker fetching one job at a time. When it finishes a job it wakes itself,
   * so it fetches again at once instead of waiting out the polling interval while the queue has
   * more; an idle slot is woken by NOTIFY when a job arrives.
   */
  async function addSlot(queue: string): Promise<void> {
    const slot: { id?: string } = {};
    slot.id = await boss.work(
      queue,
      { batchSize: 1, pollingIntervalSeconds: 2, notifyPollingIntervalSeconds: 10 },
      async ([job]) => {
        try {
          if (job) await handle(queue, job.data);
        } finally {
          if (slot.id) boss.notifyWorker(slot.id);
        }
      },
    );
  }

  return {
    runner,
    state: () => state,
    async start() {
      if (state !== 'created') return;
      state = 'running';
      for (const queue of queues) {
        for (let i = 0; i < concurrency; i++) await addSlot(queue);
      }
      logger.info('consuming', { queues, concurrency });
    },
    stop(timeoutMs) {
      stopping ??= (async () => {
        state = 'stopping';
        await Promise.all(queues.map((q) => boss.offWork(q, { wait: false })));
        await runner.stop(timeoutMs);
        state = 'stopped';
      })();
      return stopping;
    },
  };
}

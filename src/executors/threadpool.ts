import os from 'node:os';
import type { Logger } from '../config/logger.ts';
import type { Pool } from '../db/pool.ts';
import { findOrphans } from '../db/processes.ts';
import type { Dispatcher } from '../engine/engine.ts';
import type { Registry } from '../engine/registry.ts';
import { createRunner, type Runner } from '../engine/runner.ts';
import type { StepPool } from '../engine/step-pool.ts';

export interface ThreadpoolOptions {
  pool: Pool;
  registry: Registry;
  steps: StepPool;
  leaseSeconds: number;
  logger: Logger;
  /** How often to look for processes left behind (expired leases, never started). Default: lease / 2. */
  sweepIntervalMs?: number;
  /**
   * Processes run at once; more wait in a local queue (they are durable rows, so a crash loses
   * nothing: the sweeper picks them up). Unbounded, a burst of 5,000 starts kept 5,000 runs, their
   * timers and their queued pool tasks in memory at once (430 MB peak RSS). Default 64.
   */
  maxRunning?: number;
}

export interface ThreadpoolExecutor {
  dispatcher: Dispatcher;
  runner: Runner;
  /** Picks up what an earlier instance left behind, then sweeps periodically. */
  start(): Promise<void>;
  /** Stops sweeping and hands back running processes (see Runner.stop). */
  stop(timeoutMs: number): Promise<void>;
}

/** Runs processes inside this process; step bodies go to the piscina pool. */
export function createThreadpoolExecutor(opts: ThreadpoolOptions): ThreadpoolExecutor {
  const logger = opts.logger.child({ component: 'threadpool' });
  const runner = createRunner({
    pool: opts.pool,
    registry: opts.registry,
    steps: opts.steps,
    owner: `api:${os.hostname()}:${process.pid}`,
    leaseSeconds: opts.leaseSeconds,
    logger,
  });
  const maxRunning = opts.maxRunning ?? 64;
  // Insertion-ordered: first come, first run; a process queued twice (sweeper) runs once.
  const waiting = new Set<string>();
  let running = 0;
  let stopped = false;
  const next = () => {
    while (!stopped && running < maxRunning && waiting.size > 0) {
      const processId = waiting.values().next().value as string;
      waiting.delete(processId);
      running++;
      runner
        .run(processId)
        .catch((err: unknown) => logger.error('process run failed', { processId, err }))
        .finally(() => {
          running--;
          next();
        });
    }
  };
  const launch = (processId: string) => {
    waiting.add(processId);
    next();
  };
  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;

  /** `graceSeconds`: leave just-created processes to the instance that created them. */
  async function sweep(graceSeconds: number): Promise<void> {
    if (sweeping) return;
    sweeping = true;
    try {
      const mine = new Set(runner.active());
      const ids = await findOrphans(opts.pool, graceSeconds, 500);
      for (const id of ids) if (!mine.has(id) && !waiting.has(id)) launch(id);
      if (ids.length) logger.info('picked up processes', { count: ids.length });
    } catch (err) {
      logger.warn('sweep failed', { err });
    } finally {
      sweeping = false;
    }
  }

  return {
    runner,
    dispatcher: {
      afterCommit: (job) => launch(job.processId),
      aborted: (processId) => runner.abortLocal(processId),
    },
    async start() {
      await sweep(0);
      const every = opts.sweepIntervalMs ?? (opts.leaseSeconds * 1000) / 2;
      timer = setInterval(() => void sweep(Math.max(5, opts.leaseSeconds / 2)), every);
      timer.unref();
    },
    async stop(timeoutMs) {
      clearInterval(timer);
      // Queued processes stay `created`/`resumed`: the next instance's first sweep takes them.
      stopped = true;
      waiting.clear();
      await runner.stop(timeoutMs);
    },
  };
}

// The executor inside the API, by EXECUTOR: `threadpool` runs processes here in a piscina step
// pool; `worker` only sends jobs (no step pool: the API runs nothing) and sweeps for processes
// left without one.
import type { Config } from '../config/index.ts';
import type { Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import type { Pool } from '../db/pool.ts';
import type { Dispatcher, RunnerHooks } from '../engine/dispatch.ts';
import type { Registry } from '../engine/registry.ts';
import { stepPoolFromConfig } from '../engine/step-pool.ts';
import { createTimekeeper } from '../engine/timekeeper.ts';
import type { EngineMetrics } from '../engine/metrics.ts';
import { allQueues, createBoss, createQueues, createScheduleQueue } from './boss.ts';
import { createScheduler, type Scheduler } from './scheduler.ts';
import { createQueueExecutor } from './queue.ts';
import { createThreadpoolExecutor } from './threadpool.ts';

export interface ApiExecutor {
  dispatcher: Dispatcher;
  /** Schedules on pg-boss cron; ticks are consumed once `scheduler.start` is called. */
  scheduler: Scheduler;
  /** Picks up what was left behind, then sweeps periodically. */
  start(): Promise<void>;
  /** Hands back running processes (threadpool) and closes what it opened. */
  stop(timeoutMs: number): Promise<void>;
  /** Processes running in this process (always none in worker mode). */
  active(): string[];
}

export interface ApiExecutorDeps {
  pool: Pool;
  registry: Registry;
  connectionString: string;
  logger: Logger;
  publish: Publish;
  /** The URL a callback step hands out (the API's public address + the callback path). */
  callbackUrl: RunnerHooks['callbackUrl'];
  metrics: EngineMetrics;
}

export async function startApiExecutor(
  config: Config,
  deps: ApiExecutorDeps,
): Promise<ApiExecutor> {
  const { pool, registry, logger, publish } = deps;
  // Callback timeouts in either executor; in the threadpool, due retries too (workers get theirs
  // from a job that starts at the retry's time).
  const later: { retryDue?: (ids: string[]) => void } = {};
  const timekeeper = createTimekeeper({
    pool,
    publish,
    logger,
    retryDue: config.EXECUTOR === 'threadpool' ? (ids) => later.retryDue?.(ids) : undefined,
  });
  // pg-boss in every API instance, whatever the executor: its cron pass files schedule ticks.
  const boss = createBoss({
    connectionString: deps.connectionString,
    logger,
    applicationName: 'orchestrator-api-queue',
    schedule: true,
  });
  await boss.start();
  await createScheduleQueue(boss);
  const scheduler = createScheduler({ boss, pool, logger });
  const stopBoss = async () => {
    await scheduler.stop();
    await boss.stop({ graceful: true, timeout: 5_000 });
  };
  if (config.EXECUTOR === 'worker') {
    await createQueues(boss, allQueues(config.TARGET_QUEUES));
    const queue = createQueueExecutor({
      pool,
      boss,
      targetQueues: config.TARGET_QUEUES,
      leaseSeconds: config.LEASE_SECONDS,
      logger,
      metrics: deps.metrics,
    });
    return {
      dispatcher: queue.dispatcher,
      scheduler,
      async start() {
        await queue.start();
        timekeeper.start();
      },
      async stop() {
        await timekeeper.stop();
        await queue.stop();
        await stopBoss();
      },
      active: () => [],
    };
  }
  const steps = stepPoolFromConfig(config, deps.connectionString);
  const threadpool = createThreadpoolExecutor({
    pool,
    registry,
    steps,
    leaseSeconds: config.LEASE_SECONDS,
    logger,
    publish,
    callbackUrl: deps.callbackUrl,
    onDue: (_id, at) => timekeeper.hint(at),
    metrics: deps.metrics,
    maxStateBytes: config.MAX_STATE_BYTES,
    formTimeoutMs: config.FORM_TIMEOUT_MS,
  });
  later.retryDue = (ids) => threadpool.launch(ids);
  return {
    dispatcher: threadpool.dispatcher,
    scheduler,
    async start() {
      await threadpool.start();
      timekeeper.start();
    },
    async stop(timeoutMs) {
      await timekeeper.stop();
      await threadpool.stop(timeoutMs);
      await steps.close();
      await stopBoss();
    },
    active: () => threadpool.runner.active(),
  };
}

// Composition root of `npm run worker`: registry, database, pg-boss, step pool, worker loop, and
// the worker's registration in orchestrator.workers.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Config } from './config/index.ts';
import type { Logger } from './config/logger.ts';
import { embeddedConnectionString } from './db/embedded.ts';
import { runMigrations } from './db/migrate.ts';
import { createEventPublisher } from './db/events.ts';
import { createPool, retryOnConnectionError, sessionLimitsOf, type Queryable } from './db/pool.ts';
import { getPublicUrl } from './db/settings.ts';
import { markWorkerStopped, pruneWorkers, registerWorker, workerHeartbeat } from './db/workers.ts';
import { loadRegistry } from './engine/registry.ts';
import { stepPoolFromConfig } from './engine/step-pool.ts';
import { allQueues, createBoss, createQueues, queueFor } from './executors/boss.ts';
import { createWorkerExecutor, type WorkerExecutor } from './executors/worker.ts';
import { createListener } from './live/listener.ts';
import { callbackPath } from './engine/runner.ts';
import http from 'node:http';
import client from 'prom-client';
import { createEngineMetrics, type EngineMetrics } from './engine/metrics.ts';

export interface WorkerOptions {
  /** Queues to consume (see resolveQueues). */
  queues: string[];
  /** Processes run at once by this worker (step bodies run in a pool of STEP_THREADS threads). */
  concurrency: number;
}

export interface Worker {
  /** Its row in orchestrator.workers. */
  id: string;
  executor: WorkerExecutor;
  /** Graceful: stops fetching, lets steps finish up to `timeoutMs`, gives back the rest. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Runs `fn`, retrying connection failures with backoff (the database may still be starting). */
function withStartupRetry<T>(logger: Logger, what: string, fn: () => Promise<T>): Promise<T> {
  return retryOnConnectionError(fn, {
    forMs: 60_000,
    firstDelayMs: 250,
    maxDelayMs: 5_000,
    onRetry: (err) => logger.warn(`${what}: database unreachable, retrying`, { err }),
  });
}

/** A worker's own /metrics (the steps it ran), for Prometheus to scrape each worker. */
async function serveWorkerMetrics(
  metrics: EngineMetrics,
  port: number,
  host: string,
): Promise<http.Server> {
  const registry = client.Registry.merge([metrics.registry, new client.Registry()]);
  client.collectDefaultMetrics({ register: registry });
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export async function startWorker(
  config: Config,
  logger: Logger,
  options: WorkerOptions,
): Promise<Worker> {
  const registry = await loadRegistry(config.WORKFLOWS_DIR);
  // Without DATABASE_URL, the embedded Postgres that `npm start` runs on this machine.
  const connectionString = config.DATABASE_URL ?? embeddedConnectionString(config.EMBEDDED_PG_PORT);
  await withStartupRetry(logger, 'migrations', () => runMigrations(connectionString));
  const id = randomUUID();
  const pool = createPool({
    connectionString,
    max: config.DB_POOL_SIZE,
    logger,
    applicationName: 'orchestrator-worker',
    // A worker cut off mid-commit holds its locks about a lease at most (src/db/pool.ts).
    limits: sessionLimitsOf(config),
  });
  // The hand-off's fetches and claims (see src/executors/worker.ts).
  const handOffPool = createPool({
    connectionString,
    max: 2,
    logger,
    applicationName: 'orchestrator-worker-handoff',
    asynchronousCommit: true,
    limits: sessionLimitsOf(config),
  });
  const boss = createBoss({
    connectionString,
    logger,
    applicationName: 'orchestrator-worker-queue',
  });
  await withStartupRetry(logger, 'queue start', () => boss.start());
  await createQueues(boss, allQueues(config.TARGET_QUEUES));
  const steps = stepPoolFromConfig(config, connectionString);
  const callbackBase = callbackAddress(config.PUBLIC_URL, pool);
  if (!config.PUBLIC_URL && registry.list().some((w) => w.steps.some((s) => s.kind === 'callback')))
    await callbackBase().then(
      (url) => logger.info('callback URLs on the address the API recorded', { url }),
      () =>
        logger.warn(
          'no PUBLIC_URL, and no API has recorded its address yet: callback steps fail until one does',
        ),
    );
  // Events of committed changes (claims, steps), sent after each commit (see src/db/events.ts).
  const publisher = createEventPublisher({ connectionString, logger });
  await withStartupRetry(logger, 'live publisher', () => publisher.start());
  const metrics = createEngineMetrics();
  const executor = createWorkerExecutor({
    metrics,
    maxStateBytes: config.MAX_STATE_BYTES,
    formTimeoutMs: config.FORM_TIMEOUT_MS,
    pool,
    handOffPool,
    boss,
    registry,
    steps,
    queues: options.queues,
    concurrency: options.concurrency,
    targetQueues: config.TARGET_QUEUES,
    leaseSeconds: config.LEASE_SECONDS,
    owner: `worker:${os.hostname()}:${process.pid}`,
    logger,
    publish: publisher.publish,
    callbackUrl: async (id, token) => (await callbackBase()) + callbackPath(id, token),
  });

  const heartbeatSeconds = Math.max(1, Math.min(10, Math.floor(config.LEASE_SECONDS / 2)));
  const registration = {
    id,
    hostname: os.hostname(),
    pid: process.pid,
    queues: options.queues,
    concurrency: options.concurrency,
    heartbeatSeconds,
  };
  await registerWorker(pool, registration);
  await pruneWorkers(pool);
  const beat = setInterval(() => {
    workerHeartbeat(pool, id)
      .then((found) => (found ? undefined : registerWorker(pool, registration)))
      .catch((err: unknown) => logger.warn('worker heartbeat failed', { err }));
  }, heartbeatSeconds * 1000);

  // An abort reaches the step at once through the live events; the lease heartbeat (every
  // LEASE_SECONDS / 3) stays the fallback while this connection is down.
  const events = createListener({
    connectionString,
    logger,
    // Only what a worker acts on: aborts, and processes that may have a job waiting.
    wanted: (e) =>
      e.type === 'engine' ||
      (e.type === 'process' &&
        (e.status === 'aborted' || e.status === 'created' || e.status === 'resumed')),
  });
  // A created or resumed process has its job committed in the same transaction: idle slots
  // fetch at once instead of waiting out the polling interval.
  events.on('notification', (e) => {
    // Unpaused: jobs for what stopped were sent in the unlocking transaction.
    if (e.type === 'engine' && !e.globalLock) executor.wake();
    if (e.type !== 'process') return;
    if (e.status === 'aborted') executor.runner.abortLocal(e.id);
    else if (e.status === 'created' || e.status === 'resumed') {
      // The event has no target: this names the standard queue (a worker that consumes
      // per-target queues is woken whatever the hint).
      const kind = e.status === 'created' ? 'new' : 'resume';
      executor.wake(queueFor({ isTask: e.isTask, target: '', kind }, []));
    }
  });
  events.on('reconnected', () => executor.wake());
  events.on('missed', () => executor.wake());
  await events.start();

  await executor.start();
  const metricsServer =
    config.METRICS_PORT === undefined
      ? undefined
      : await serveWorkerMetrics(metrics, config.METRICS_PORT, config.HOST);
  logger.info('worker ready', {
    id,
    queues: options.queues,
    concurrency: options.concurrency,
    leaseSeconds: config.LEASE_SECONDS,
  });

  let stopped: Promise<void> | undefined;
  return {
    id,
    executor,
    stop(timeoutMs = config.SHUTDOWN_TIMEOUT_SECONDS * 1000) {
      stopped ??= (async () => {
        logger.info('worker stopping', { id, active: executor.runner.active().length });
        await executor.stop(timeoutMs);
        metricsServer?.close();
        await publisher.stop();
        await events.stop();
        clearInterval(beat);
        await boss.stop({ graceful: true, timeout: 5_000 });
        await steps.close();
        await markWorkerStopped(pool, id).catch((err: unknown) =>
          logger.warn('could not mark the worker stopped', { err }),
        );
        await handOffPool.end();
        await pool.end();
        logger.info('worker stopped', { id });
      })();
      return stopped;
    },
  };
}

/**
 * Where callbacks reach the API: PUBLIC_URL, else the address an API recorded in the database at
 * its start (read again at most every 30 s). With neither, a callback step fails with this
 * message rather than hand out an address of the worker's guessing.
 */
function callbackAddress(publicUrl: string | undefined, pool: Queryable): () => Promise<string> {
  if (publicUrl) {
    const base = publicUrl.replace(/\/$/, '');
    return async () => base;
  }
  let known: { url: string; at: number } | undefined;
  return async () => {
    if (!known || Date.now() - known.at > 30_000) {
      const url = await getPublicUrl(pool);
      if (url) known = { url: url.replace(/\/$/, ''), at: Date.now() };
    }
    if (!known)
      throw new Error(
        'no address for callback URLs: set PUBLIC_URL on the worker, or start an API (it records its address in the database)',
      );
    return known.url;
  };
}

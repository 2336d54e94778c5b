import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './api/app.ts';
import { createAuthenticator, expiryOf } from './api/auth.ts';
import { sitePolicy } from './api/site-guards.ts';
import type { Config } from './config/index.ts';
import type { Logger } from './config/logger.ts';
import { openDatabase } from './db/database.ts';
import { createEventPublisher } from './db/events.ts';
import { createPool, sessionLimitsOf } from './db/pool.ts';
import { createDatabaseWatch } from './api/database-watch.ts';
import { recordPublicUrl } from './db/settings.ts';
import { createEngine, type Engine } from './engine/engine.ts';
import { loadRegistry } from './engine/registry.ts';
import { callbackPath } from './engine/runner.ts';
import { findChangedProcesses } from './engine/validate.ts';
import { startApiExecutor } from './executors/api-executor.ts';
import { allQueues } from './executors/boss.ts';
// Live view: web page and Socket.IO relay.
import { liveViewRouter } from './api/live-view.ts';
import { DEFAULT_SCHEDULES, installDefaultSchedules } from './executors/scheduler.ts';
import { createLiveServer, type LiveServer } from './live/live-server.ts';
import { createEngineMetrics } from './engine/metrics.ts';

export interface Orchestrator {
  url: string;
  port: number;
  connectionString: string;
  engine: Engine;
  /** Processes this instance is running right now. */
  activeProcesses(): string[];
  /** Graceful: stops HTTP, hands back running processes, drains the step pool, closes the database. */
  close(timeoutMs?: number): Promise<void>;
}

/** Builds and starts the API with its executor: the composition root of `npm start`. */
export async function startOrchestrator(config: Config, logger: Logger): Promise<Orchestrator> {
  // First: a configuration that would expose the API without authentication stops here.
  const auth = createAuthenticator(config, logger);
  const registry = await loadRegistry(config.WORKFLOWS_DIR);
  logger.info('workflows loaded', { count: registry.list().length });
  const database = await openDatabase(config, logger);
  // Every session bounds how long it waits for a lock and how long a lost one keeps its locks
  // (see SessionLimits in src/db/pool.ts).
  const limits = sessionLimitsOf(config);
  const pool = createPool({
    connectionString: database.connectionString,
    max: config.DB_POOL_SIZE,
    logger,
    applicationName: 'orchestrator-api',
    limits,
  });
  // The API's reads and its health check have connections of their own, each statement bounded
  // too: operations piling up on a locked row cannot take them, and a read cannot hang.
  const reads = { ...limits, statementTimeoutMs: config.API_READ_TIMEOUT_MS };
  const readPool = createPool({
    connectionString: database.connectionString,
    max: config.DB_READ_POOL_SIZE,
    logger,
    applicationName: 'orchestrator-api-reads',
    limits: reads,
  });
  // One connection, not kept (each check connects: a database that refuses new clients shows).
  const healthPool = createPool({
    connectionString: database.connectionString,
    max: 1,
    logger,
    applicationName: 'orchestrator-api-health',
    limits: reads,
    idleTimeoutMillis: 1,
    connectRetryMs: 0,
  });
  const databaseWatch = createDatabaseWatch();
  // Events of committed changes, sent after each commit (see src/db/events.ts).
  const events = createEventPublisher({ connectionString: database.connectionString, logger });
  await events.start();
  const { publish } = events;
  // Known once the server listens (PORT may be 0).
  let publicUrl = config.PUBLIC_URL ?? '';
  const metrics = createEngineMetrics();
  const executor = await startApiExecutor(config, {
    metrics,
    pool,
    registry,
    connectionString: database.connectionString,
    logger,
    publish,
    callbackUrl: (id, token) => publicUrl.replace(/\/$/, '') + callbackPath(id, token),
  });
  const engine = createEngine({
    pool,
    readPool,
    registry,
    dispatcher: executor.dispatcher,
    logger,
    publish,
    maxStateBytes: config.MAX_STATE_BYTES,
    formTimeoutMs: config.FORM_TIMEOUT_MS,
  });
  // Set once the live server exists (it needs the HTTP server, which needs the app).
  const liveRef: { server?: LiveServer } = {};
  // Without authentication: the names the API answers to, the origins it takes writes from.
  const site = sitePolicy({
    host: config.HOST,
    allowedHosts: config.ALLOWED_HOSTS,
    publicUrl: config.PUBLIC_URL,
    corsOrigins: config.CORS_ORIGINS,
  });
  const app = createApp({
    engine,
    pool,
    healthPool,
    databaseWatch,
    scheduler: executor.scheduler,
    executor: config.EXECUTOR,
    queues: allQueues(config.TARGET_QUEUES),
    metrics,
    liveClients: () => liveRef.server?.io.engine.clientsCount ?? 0,
    metricsToken: config.METRICS_TOKEN,
    logger,
    auth,
    corsOrigins: config.CORS_ORIGINS,
    trustProxy: config.TRUST_PROXY,
    site,
    // Live view: the web page at `/`.
    extend: (a) => a.use(liveViewRouter()),
  });
  const server = http.createServer(app);
  // Live view: Socket.IO on the same port, relaying this database's LISTEN/NOTIFY events.
  const live = createLiveServer({
    httpServer: server,
    authenticate: auth.required
      ? async (token) => {
          const actor = await auth.verify(token);
          return actor && { expiresAt: expiryOf(actor) };
        }
      : undefined,
    corsOrigins: config.CORS_ORIGINS,
    // Without authentication, a handshake is checked as a write is: its Host, then its Origin.
    checkRequest: auth.required
      ? undefined
      : (req) =>
          !site.hostAllowed(req)
            ? 'host_refused'
            : !site.originAllowed(req)
              ? 'origin_refused'
              : undefined,
    pool,
    connectionString: database.connectionString,
    logger,
  });
  liveRef.server = live;
  await live.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  await executor.start();
  const installed = await installDefaultSchedules(
    pool,
    executor.scheduler,
    DEFAULT_SCHEDULES,
    (name) => registry.get(name) !== undefined,
  );
  if (installed.length) logger.info('default schedules installed', { schedules: installed });
  executor.scheduler.start((tick) => engine.startScheduled(tick));
  // Workflows changed under processes that have not ended: said at once, not at their resume.
  findChangedProcesses(pool, registry, { reported: 10 }).then(
    (found) => {
      if (found.changedCount > 0)
        logger.warn('processes no longer match their workflow: they would fail on resume', {
          count: found.changedCount,
          examples: found.changed,
        });
    },
    (err: unknown) => logger.warn('could not check processes against their workflows', { err }),
  );
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.HOST}:${port}`;
  publicUrl ||= url;
  // Worker processes without PUBLIC_URL hand out callback URLs on it (src/worker.ts).
  await recordPublicUrl(pool, publicUrl);
  logger.info('orchestrator listening', {
    url,
    executor: config.EXECUTOR,
    stepThreads: config.STEP_THREADS,
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    connectionString: database.connectionString,
    engine,
    activeProcesses: () => executor.active(),
    close(timeoutMs = 10_000) {
      closing ??= (async () => {
        const httpClosed = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await live.close(); // Live view: closes the websockets HTTP keeps open, stops listening.
        await httpClosed;
        await executor.stop(timeoutMs);
        await events.stop();
        await pool.end();
        await readPool.end();
        await healthPool.end();
        await database.close();
      })();
      return closing;
    },
  };
}

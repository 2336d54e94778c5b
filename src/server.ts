import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './api/app.ts';
import type { Config } from './config/index.ts';
import type { Logger } from './config/logger.ts';
import { openDatabase } from './db/database.ts';
import { createPool } from './db/pool.ts';
import { createEngine, type Engine } from './engine/engine.ts';
import { loadRegistry } from './engine/registry.ts';
import { startApiExecutor } from './executors/api-executor.ts';
import { workerStatusRouter } from './api/worker-status.ts';
import { allQueues } from './executors/boss.ts';

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
  const registry = await loadRegistry(config.WORKFLOWS_DIR);
  logger.info('workflows loaded', { count: registry.list().length });
  const database = await openDatabase(config, logger);
  const pool = createPool({
    connectionString: database.connectionString,
    max: config.DB_POOL_SIZE,
    logger,
    applicationName: 'orchestrator-api',
  });
  const executor = await startApiExecutor(config, {
    pool,
    registry,
    connectionString: database.connectionString,
    logger,
  });
  const engine = createEngine({ pool, registry, dispatcher: executor.dispatcher, logger });
  const app = createApp({
    engine,
    pool,
    logger,
    extend: (a) => {
      a.use(
        workerStatusRouter({
          pool,
          executor: config.EXECUTOR,
          queues: allQueues(config.TARGET_QUEUES),
        }),
      );
    },
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  await executor.start();
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.HOST}:${port}`;
  logger.info('orchestrator listening', {
    url,
    executor: config.EXECUTOR,
    maxWorkers: config.MAX_WORKERS,
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
        await httpClosed;
        await executor.stop(timeoutMs);
        await pool.end();
        await database.close();
      })();
      return closing;
    },
  };
}

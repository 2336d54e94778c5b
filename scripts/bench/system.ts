// The system under test as real processes: a Postgres of its own (embedded in a temporary
// folder, a server of scripts/test-server.sh, or a fresh database on DATABASE_URL's server), the
// API and worker processes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { silentLogger } from '../../src/config/logger.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { NodeProcess, root } from '../support/node-process.ts';
import { freePort } from '../support/ports.ts';
import { startTestServer, type ServerSpec } from '../support/test-server.ts';

export { NodeProcess, root };

export const benchWorkflows = path.join(root, 'scripts', 'bench', 'workflows');
/** Worker mode lands with `src/cli/worker.ts`; without it the worker figures are n/a. */
export const workerModeAvailable = fs.existsSync(path.join(root, 'src', 'cli', 'worker.ts'));

export interface BenchDatabase {
  url: string;
  /** What it runs on, for the report. */
  describe: string;
  /**
   * Empties the orchestrator's tables and pg-boss's jobs between runs; on `client` when given
   * (the cost probe counts its own statements), else on a connection of its own.
   */
  reset(client?: pg.Client): Promise<void>;
  close(): Promise<void>;
}

const DB_NAME = 'orchestrator_bench';

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A database of its own, a fresh `orchestrator_bench`: on `server` when given (`embedded`: an
 * embedded Postgres, default settings, fsync on, in a temporary folder; `stock`, `stock:MAJOR`,
 * `embedded:MAJOR`: a server started by scripts/test-server.sh, stopped by close()); without it,
 * on `DATABASE_URL`'s server when set, else embedded.
 */
export async function openBenchDatabase(opts: {
  pgStats: boolean;
  server?: ServerSpec;
}): Promise<BenchDatabase> {
  let serverUrl: string;
  let stop = async () => {};
  let describe: string;
  if (opts.server === undefined && process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL;
    describe = 'DATABASE_URL server';
  } else if (opts.server === undefined || opts.server === 'embedded') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-bench-'));
    fs.chmodSync(dir, 0o755);
    const flags = ['-c', 'max_connections=300'];
    if (opts.pgStats) flags.push('-c', 'shared_preload_libraries=pg_stat_statements');
    const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
    const embedded = await startEmbeddedPostgres({
      dataDir: dir,
      port: await freePort(),
      logger: silentLogger,
      postgresFlags: flags,
    }).catch((err: unknown) => {
      removeDir();
      throw err;
    });
    serverUrl = embedded.connectionString;
    describe = 'embedded Postgres (default settings, fsync on)';
    stop = async () => {
      await embedded.stop();
      removeDir();
    };
  } else {
    // Its own configuration (Debian's stock one for `stock`); pg_stat_statements is preloaded.
    const server = await startTestServer(opts.server);
    serverUrl = server.url;
    describe = server.describe;
    stop = () => server.stop();
  }
  let version: string | undefined;
  let url: string;
  try {
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]
        ?.server_version;
      await admin.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${DB_NAME}`);
    } finally {
      await admin.end();
    }
    url = withDatabase(serverUrl, DB_NAME);
    await runMigrations(url);
    if (opts.pgStats) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await c.end();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    describe: `${describe}, PostgreSQL ${version}`,
    async reset(client?: pg.Client) {
      const c = client ?? new pg.Client({ connectionString: url });
      if (!client) await c.connect();
      try {
        const boss = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgboss'`);
        const tables = boss.rowCount
          ? 'orchestrator.processes, pgboss.job'
          : 'orchestrator.processes';
        await emptyTables(c, tables);
      } finally {
        if (!client) await c.end();
      }
    },
    close() {
      // Once, however often called (Ctrl-C's handler and the run's own `finally` may both); the
      // server is stopped even when it no longer answers.
      closing ??= (async () => {
        try {
          const c = new pg.Client({ connectionString: serverUrl });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`).catch(() => undefined);
          await c.end();
        } finally {
          await stop();
        }
      })();
      return closing;
    },
  };
}

/** The API as started by the benchmark: its URL and its process (peak RSS read from /proc). */
export interface Api {
  url: string;
  process: NodeProcess;
}

/** Starts `node src/cli/serve.ts` on the database and waits until /api/health answers. */
export async function startApi(
  db: BenchDatabase,
  executor: 'threadpool' | 'worker',
  extraEnv: Record<string, string> = {},
): Promise<Api> {
  const port = await freePort();
  const proc = new NodeProcess('src/cli/serve.ts', [], {
    DATABASE_URL: db.url,
    EXECUTOR: executor,
    PORT: String(port),
    WORKFLOWS_DIR: benchWorkflows,
    ...extraEnv,
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!proc.running) throw new Error(`the API exited while starting:\n${proc.output}`);
    const ok = await fetch(`${url}/api/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, process: proc };
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`the API did not start in 60 s:\n${proc.output}`);
    }
    await sleep(50);
  }
}

/**
 * Processes each benchmark worker runs at once (`--concurrency`): no-op processes wait on the
 * database, not on a core, so a worker runs many at once as a deployment would configure it.
 */
export const WORKER_CONCURRENCY = 16;

/** Starts `node src/cli/worker.ts --concurrency WORKER_CONCURRENCY` and waits for its ready line. */
export async function startWorker(
  db: BenchDatabase,
  extraEnv: Record<string, string> = {},
): Promise<NodeProcess> {
  const proc = new NodeProcess('src/cli/worker.ts', ['--concurrency', String(WORKER_CONCURRENCY)], {
    DATABASE_URL: db.url,
    WORKFLOWS_DIR: benchWorkflows,
    LOG_LEVEL: 'info',
    ...extraEnv,
  });
  try {
    await proc.waitFor(/worker ready/, 'a worker');
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}

/**
 * Empties `tables` between runs, then VACUUM ANALYZE. Idle workers and the API's sweeper still
 * query these tables: TRUNCATE's exclusive locks can deadlock with them, and then the truncate is
 * simply tried again.
 */
export async function emptyTables(c: Pick<pg.Client, 'query'>, tables: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await c.query(`TRUNCATE ${tables} CASCADE`);
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= 10) throw err;
      await sleep(50 * attempt);
    }
  }
  await c.query('VACUUM ANALYZE');
}

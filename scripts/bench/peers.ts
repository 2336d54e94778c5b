// Item 0, `--peers`: the Celery + Redis design on the same Postgres, for comparison. A Celery app
// (scripts/bench/peers/celery_app.py) whose task runs a 3-step workflow, one transaction per step,
// each the ceiling's step-shaped statement, on copies of the orchestrator's tables in schema
// `bench_peers` (same columns, indexes and storage settings, no triggers). Redis is started here on
// a free port without persistence; one prefork worker with 2 processes; no result backend. All
// workflows are enqueued up front (one INSERT of their process rows, then one task each), and
// completions are counted in Postgres: workflows/s from that INSERT to the last step's commit, by
// Postgres's clock.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from '../support/ports.ts';
import { root } from './system.ts';

export const PEERS_APT =
  'apt-get update && apt-get install -y redis-server python3-celery python3-redis python3-psycopg2';
const PEERS_DIR = path.join(root, 'scripts', 'bench', 'peers');
/** Prefork processes of the Celery worker: as many as the benchmark's worker processes. */
export const CELERY_PROCESSES = 2;
const SCHEMA = 'bench_peers';

/** Debian's Celery lives in the system Python; a python3 earlier on PATH (pyenv) may lack it. */
const PYTHONS = ['/usr/bin/python3', 'python3'];

export interface PeerTools {
  python: string;
  redis: string;
}

/** The Python with celery, redis and psycopg2, and redis-server; undefined when one is missing. */
export function findPeerTools(): PeerTools | undefined {
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (redis.status !== 0) return undefined;
  for (const python of PYTHONS) {
    const r = spawnSync(python, ['-c', 'import celery, redis, psycopg2'], { encoding: 'utf8' });
    if (r.status === 0) return { python, redis: 'redis-server' };
  }
  return undefined;
}

/** Children still running, killed when the benchmark exits however it ends. */
const running = new Set<Child>();
process.once('exit', () => {
  for (const c of running) c.killGroup('SIGKILL');
});

/**
 * A child process in a process group of its own (the Celery worker's prefork children go with it),
 * whose output is kept for the ready line and for errors.
 */
class Child {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<unknown>;
  constructor(cmd: string, args: string[], env: Record<string, string>, cwd = PEERS_DIR) {
    this.child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.add(this);
    const append = (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > 100_000) this.output = this.output.slice(-50_000);
    };
    this.child.stdout?.on('data', append);
    this.child.stderr?.on('data', append);
    this.exited = once(this.child, 'exit').finally(() => running.delete(this));
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  killGroup(signal: NodeJS.Signals): void {
    try {
      if (this.child.pid) process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }
  async waitFor(test: (output: string) => boolean, what: string, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.output)) {
      if (!this.running) throw new Error(`${what} exited:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`${what} did not start:\n${this.output.slice(-3000)}`);
      await sleep(20);
    }
  }
  /** SIGTERM (Celery's warm shutdown), then SIGKILL to the whole group after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.killGroup('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    // Anything of the group left behind (a prefork child) goes too.
    this.killGroup('SIGKILL');
  }
}

/** Runs a script to its end; fails with its output when it exits non-zero. */
async function runToEnd(cmd: string, args: string[], env: Record<string, string>, what: string) {
  const c = new Child(cmd, args, env);
  const [code] = (await c.exited) as [number | null];
  if (code !== 0) throw new Error(`${what} failed (${code}):\n${c.output.slice(-3000)}`);
}

/** The peer's tables: the orchestrator's, copied without triggers or foreign keys to them. */
async function createTables(db: pg.Client): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.query(`CREATE SCHEMA ${SCHEMA}`);
  await db.query(`CREATE TABLE ${SCHEMA}.processes (LIKE orchestrator.processes INCLUDING ALL)`);
  await db.query(
    `CREATE TABLE ${SCHEMA}.process_steps (LIKE orchestrator.process_steps INCLUDING ALL)`,
  );
  await db.query(
    `ALTER TABLE ${SCHEMA}.process_steps ADD FOREIGN KEY (process_id)
       REFERENCES ${SCHEMA}.processes (id) ON DELETE CASCADE`,
  );
  // Storage settings (e.g. fillfactor for HOT updates) as the orchestrator's tables have them.
  for (const t of ['processes', 'process_steps']) {
    const { rows } = await db.query<{ opts: string[] | null }>(
      `SELECT reloptions AS opts FROM pg_class WHERE oid = $1::regclass`,
      [`orchestrator.${t}`],
    );
    const opts = rows[0]?.opts;
    if (opts?.length) await db.query(`ALTER TABLE ${SCHEMA}.${t} SET (${opts.join(', ')})`);
  }
}

/**
 * `runs` runs of `workflows` workflows; workflows per second of each. With `fanout`, each run is one
 * Celery task (`fan_out`) that inserts a parent row and the workflows' rows and sends their tasks
 * from the worker: workflows/s from the parent row's insert to the last workflow's last commit.
 */
export async function measureCeleryPeer(
  url: string,
  tools: PeerTools,
  opts: { workflows: number; runs: number; timeoutMs: number; fanout?: boolean },
): Promise<number[]> {
  const db = new pg.Client({ connectionString: url, application_name: 'bench-peers' });
  await db.connect();
  const port = await freePort();
  const redis = new Child(
    tools.redis,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
  );
  let worker: Child | undefined;
  try {
    await createTables(db);
    await redis.waitFor((o) => /Ready to accept connections/.test(o), 'redis-server');
    const env = { BENCH_PG_URL: url, BENCH_BROKER_URL: `redis://127.0.0.1:${port}/0` };
    worker = new Child(
      tools.python,
      [
        '-m',
        'celery',
        '-A',
        'celery_app',
        'worker',
        '-c',
        String(CELERY_PROCESSES),
        '--pool',
        'prefork',
        '--loglevel',
        'WARNING',
        '--without-gossip',
        '--without-mingle',
        '--without-heartbeat',
      ],
      env,
    );
    await worker.waitFor(
      (o) =>
        /peer worker ready/.test(o) &&
        (o.match(/peer process ready/g)?.length ?? 0) >= CELERY_PROCESSES,
      'the Celery worker',
    );
    const results: number[] = [];
    for (let run = 0; run < opts.runs; run++) {
      await db.query(`TRUNCATE ${SCHEMA}.processes CASCADE`);
      await db.query(`VACUUM ANALYZE ${SCHEMA}.processes, ${SCHEMA}.process_steps`);
      await runToEnd(
        tools.python,
        ['enqueue.py', ...(opts.fanout ? ['--fanout'] : []), String(opts.workflows)],
        env,
        'the enqueue script',
      );
      const want = opts.workflows * 3;
      const deadline = Date.now() + opts.timeoutMs;
      for (;;) {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${SCHEMA}.process_steps`,
        );
        if ((rows[0]?.n ?? 0) >= want) break;
        if (!worker.running)
          throw new Error(`the Celery worker exited:\n${worker.output.slice(-3000)}`);
        if (Date.now() > deadline)
          throw new Error(
            `Celery peer: ${rows[0]?.n}/${want} steps in time:\n${worker.output.slice(-2000)}`,
          );
        await sleep(50);
      }
      // The fan-out's parent row is the earliest started_at and never completes.
      const { rows } = await db.query<{ seconds: number; done: number }>(
        `SELECT extract(epoch FROM max(last_modified_at) FILTER (WHERE status = 'completed')
                                   - min(started_at))::float AS seconds,
                count(*) FILTER (WHERE status = 'completed')::int AS done
           FROM ${SCHEMA}.processes`,
      );
      const r = rows[0]!;
      if (r.done !== opts.workflows)
        throw new Error(`Celery peer: ${r.done}/${opts.workflows} workflows completed`);
      results.push(opts.workflows / r.seconds);
    }
    return results;
  } finally {
    await worker?.stop();
    await redis.stop();
    await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => undefined);
    await db.end();
  }
}

// The plans Postgres makes for the engine's and pg-boss's statements in a normal workload, read
// from the server itself: no statement JIT-compiled (on a server that has JIT, as Debian's
// packages, the official image and managed services do), and no sequential scan of the big tables
// once they hold thousands of rows, even for statements first prepared while they were empty.
// CI runs this file on every server of its matrix (.ci/run), Debian's stock postgresql-15 among them.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/config/logger.ts';
import { createPool } from '../src/db/pool.ts';
import { client } from './support/api.ts';
import { useHarness } from './support/harness.ts';
import { freePort } from './support/ports.ts';
import { spawnNode, waitForOutput, type Spawned } from './support/spawn.ts';
import { apiListening, startWorkerProcess, terminate } from './support/workers.ts';

const BIG_TABLES = ['processes', 'process_steps', 'job_common'];
/** Rows the big tables are grown to between the warm-up and the measured run. */
const GROWN = 5_000;

// Thousands of hand-made rows: no invariant check (the harness's default without an executor).
const h = useHarness();
let jitAvailable = false;
let statementsAvailable = false;
/** pg_stat_statements counts JIT-compiled functions from PostgreSQL 15 on (jit_functions). */
let jitCounted = false;

beforeAll(async () => {
  const { rows } = await h.db.pool.query<{ jit: boolean; preload: string; version: number }>(
    `SELECT pg_jit_available() AS jit, current_setting('shared_preload_libraries') AS preload,
            current_setting('server_version_num')::int AS version`,
  );
  jitAvailable = rows[0]!.jit;
  statementsAvailable = rows[0]!.preload.includes('pg_stat_statements');
  jitCounted = statementsAvailable && rows[0]!.version >= 150000;
  if (statementsAvailable)
    await h.db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
});

/** The API (and, in worker mode, two workers) as spawned processes on the test database. */
async function startSystem(mode: 'threadpool' | 'worker'): Promise<{
  http: ReturnType<typeof client>;
  stop(): Promise<void>;
}> {
  const port = await freePort();
  const api = spawnNode('src/cli/serve.ts', [], {
    DATABASE_URL: h.db.url,
    EXECUTOR: mode,
    PORT: String(port),
  });
  await waitForOutput(api, apiListening, 60_000);
  const workers: Spawned[] =
    mode === 'worker'
      ? await Promise.all([1, 2].map(() => startWorkerProcess(h.db.url, ['--concurrency', '16'])))
      : [];
  return {
    http: client(`http://127.0.0.1:${port}`),
    // Ended backends flush their statistics: what they did is counted once they are gone.
    async stop() {
      await Promise.all([...workers, api].map(terminate));
    },
  };
}

/** Starts `count` noop processes through the REST API, `inFlight` at a time, each to completion. */
async function runNoops(http: ReturnType<typeof client>, count: number, inFlight = 32) {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next++;
        const id = await http.start('noop');
        await http.waitForStatus(id, 'completed', 60_000);
      }
    }),
  );
}

/** The state of a long-running deployment: thousands of ended processes, steps and jobs. */
async function grow(): Promise<void> {
  await h.db.pool.query(
    `WITH p AS (
       INSERT INTO orchestrator.processes
              (id, workflow_name, status, is_task, target, last_step, step_index)
       SELECT gen_random_uuid(), 'noop', 'completed', false, 'modify', 'Three', 3
         FROM generate_series(1, $1) RETURNING id)
     INSERT INTO orchestrator.process_steps
            (process_id, step_index, name, status, state, started_at, completed_at)
     SELECT p.id, s.i, 'Step ' || s.i, 'success', '{}'::jsonb, now(), now()
       FROM p, generate_series(0, 2) s (i)`,
    [GROWN],
  );
  await h.db.pool.query(
    `INSERT INTO pgboss.job (name, data, state, completed_on)
     SELECT 'new_workflows', jsonb_build_object('processId', gen_random_uuid(), 'user', null),
            'completed', now()
       FROM generate_series(1, $1)`,
    [GROWN],
  );
}

async function seqScans(): Promise<Record<string, { scans: number; rows: number }>> {
  const { rows } = await h.db.pool.query<{ relname: string; scans: number; rows: number }>(
    `SELECT relname, seq_scan AS scans, seq_tup_read AS rows FROM pg_stat_user_tables
      WHERE relname = ANY($1::text[]) AND schemaname IN ('orchestrator', 'pgboss')`,
    [BIG_TABLES],
  );
  return Object.fromEntries(rows.map((r) => [r.relname, { scans: r.scans, rows: r.rows }]));
}

async function jitCompiled(): Promise<{ query: string; calls: number; functions: number }[]> {
  const { rows } = await h.db.pool.query<{ query: string; calls: number; functions: number }>(
    `SELECT left(query, 120) AS query, calls, jit_functions AS functions FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND jit_functions > 0 ORDER BY jit_functions DESC`,
  );
  return rows;
}

describe.each(['worker', 'threadpool'] as const)('a normal workload, %s mode', (mode) => {
  it('plans every statement without JIT and reads the grown tables through their indexes', async () => {
    // Warm-up on the tables as a fresh install has them: the engine's connections prepare their
    // statements now (five executions and more, so a generic plan would be cached).
    const warm = await startSystem(mode);
    await runNoops(warm.http, 40, 8);
    await grow();
    // The same connections go on, their statements prepared on (near) empty tables.
    await h.db.pool.query('SELECT pg_stat_reset()');
    if (statementsAvailable) await h.db.pool.query('SELECT pg_stat_statements_reset()');
    await runNoops(warm.http, 300);
    await warm.stop();

    const scans = await seqScans();
    // A scan of a grown table through its index reads no row sequentially; a sequential scan
    // that stops at its LIMIT after a few rows is the planner's right choice; one that reads the
    // table through is what a plan made for an empty table does. Less than one table's worth:
    for (const table of BIG_TABLES) {
      expect(scans[table]?.rows ?? 0, `rows of ${table} read sequentially`).toBeLessThan(GROWN);
    }
    if (jitCounted) expect(await jitCompiled()).toEqual([]);
  });
});

describe('the checks above', () => {
  it('see a JIT-compiled statement where a session setting skews the costs', async (ctx) => {
    // What `enable_seqscan=off` on the engine's connections did on a JIT-capable server.
    if (!jitAvailable || !statementsAvailable) ctx.skip();
    await h.db.pool.query('SELECT pg_stat_statements_reset()');
    const skewed = new pg.Client({ connectionString: h.db.url, options: '-c enable_seqscan=off' });
    await skewed.connect();
    try {
      await skewed.query(
        `SELECT * FROM orchestrator.engine_settings WHERE global_lock IS NOT NULL`,
      );
    } finally {
      await skewed.end();
    }
    expect((await jitCompiled()).length).toBeGreaterThan(0);
  });

  it("see a generic plan cached while the table was empty outlive its growth, and not with the engine's pools", async () => {
    // Without force_custom_plan (the engine's pools set it), a statement prepared on an empty
    // table keeps the plan made then, costs and all, whatever the table grows to. Which plan that
    // is depends on the server (18 scans the empty table sequentially, 13 takes an index): the
    // check is that it does not change.
    const other = await h.otherDatabase();
    const pools = [
      createPool({ connectionString: other.url, logger: silentLogger, max: 1 }),
      new pg.Pool({ connectionString: other.url, max: 1 }),
    ];
    const explain = async (pool: pg.Pool) => {
      const c = await pool.connect();
      try {
        const { rows } = await c.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN EXECUTE "plans-test-claim"('{created}', 'noop')`,
        );
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      } finally {
        c.release();
      }
    };
    try {
      await other.pool.query('VACUUM ANALYZE orchestrator.processes');
      const claim = {
        name: 'plans-test-claim',
        text: `SELECT id FROM orchestrator.processes WHERE status = ANY($1::text[]) AND workflow_name = $2 LIMIT 1`,
        values: [['created'], 'noop'],
      };
      for (const pool of pools) for (let i = 0; i < 8; i++) await pool.query(claim);
      const before = await Promise.all(pools.map(explain));
      await other.pool.query(
        `INSERT INTO orchestrator.processes (id, workflow_name, status, is_task, target)
         SELECT gen_random_uuid(), 'noop', 'completed', false, 'modify' FROM generate_series(1, $1)`,
        [GROWN],
      );
      const after = await Promise.all(pools.map(explain));
      // The engine's: planned again for the grown table, through an index.
      expect(after[0]).not.toEqual(before[0]);
      expect(after[0]).not.toMatch(/Seq Scan on processes/);
      // A plain connection's: the plan of the empty table, unchanged.
      expect(after[1]).toEqual(before[1]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});

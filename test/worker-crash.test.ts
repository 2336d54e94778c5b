// Worker mode under crashes and shutdowns, with real worker processes: kill -9 mid-step, SIGTERM
// hand-over, and many processes across two workers.
import { PgBoss } from 'pg-boss';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/config/logger.ts';
import { createPool } from '../src/db/pool.ts';
import { createQueueExecutor } from '../src/executors/queue.ts';
import { checkInvariants } from '../src/db/testkit/invariants.ts';
import { loadRegistry } from '../src/engine/registry.ts';
import { seedProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';
import { root } from './support/paths.ts';
import { type Spawned } from './support/spawn.ts';
import { terminate } from './support/workers.ts';

// Short leases so that recovery after kill -9 happens within the test.
const env = { LEASE_SECONDS: '2' };
// The API in worker mode; the workers are the tests' own.
const h = useHarness({ executor: 'worker', env, workers: 0 });

/** The worker (of `workers`) whose pid holds the lease of process `id`. */
async function holder(id: string, workers: Spawned[]): Promise<Spawned> {
  const { rows } = await h.db.pool.query<{ owner: string | null }>(
    `SELECT lease_owner AS owner FROM orchestrator.processes WHERE id = $1`,
    [id],
  );
  const pid = Number(rows[0]?.owner?.split(':').pop());
  const w = workers.find((x) => x.child.pid === pid);
  if (!w) throw new Error(`no worker holds ${id} (owner ${rows[0]?.owner})`);
  return w;
}

const liveJobs = async (id: string) =>
  (
    await h.db.pool.query(
      `SELECT count(*)::int AS n FROM pgboss.job
        WHERE data->>'processId' = $1 AND state IN ('created', 'retry', 'active')`,
      [id],
    )
  ).rows[0].n;

describe('sweeper', () => {
  it('gives a process left without a job exactly one, even with two sweepers racing', async () => {
    const id = await seedProcess(h.db.pool, { createdBy: 'test' });
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET last_modified_at = now() - interval '1 hour' WHERE id = $1`,
      [id],
    );
    const stuck = await h.db.pool.query(`SELECT id, reason FROM orchestrator.stuck_processes`);
    expect(stuck.rows).toEqual([{ id, reason: 'no job queued' }]);

    const pool = createPool({ connectionString: h.db.url, logger: silentLogger, max: 4 });
    const boss = new PgBoss({ connectionString: h.db.url, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    try {
      const sweepers = [1, 2].map(() =>
        createQueueExecutor({
          pool,
          boss,
          targetQueues: [],
          leaseSeconds: 2,
          logger: silentLogger,
        }),
      );
      for (let round = 0; round < 5; round++) {
        await Promise.all(sweepers.map((s) => s.sweep()));
        expect(await liveJobs(id)).toBe(1);
      }
      expect((await h.db.pool.query(`SELECT id FROM orchestrator.stuck_processes`)).rows).toEqual(
        [],
      );
    } finally {
      await boss.stop({ graceful: false });
      await pool.end();
    }
    // The workers of the next test run it.
    const worker = await h.startWorker(['--concurrency', '1'], env);
    await h.http.waitForStatus(id, 'completed', 60_000);
    expect(await terminate(worker)).toBe(0);
  });
});

describe('kill -9 of a worker mid-step', () => {
  it('another worker continues from the last committed step; every step committed once', async () => {
    const workers = await Promise.all([
      h.startWorker(['--concurrency', '2'], env),
      h.startWorker(['--concurrency', '2'], env),
    ]);
    const id = await h.http.start('slow', { sleepMs: 500 });
    await h.http.waitFor(id, (p) => p.steps.length >= 2, 60_000);
    const victim = await holder(id, workers);
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBe('SIGKILL');
    // The job of the dead worker stays active; the sweeper adds one for the expired lease.

    const done = await h.http.waitForStatus(id, 'completed', 60_000);
    expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
    expect(done.steps.map((s: any) => [s.name, s.status])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [`Step ${n}`, 'success']),
    );
    // The dead worker's job was cancelled when the process was queued again: nothing stays active.
    await expect.poll(() => liveJobs(id), { timeout: 60_000 }).toBe(0);
    for (const w of workers) if (w !== victim) expect(await terminate(w)).toBe(0);
  });
});

describe('SIGTERM of a worker mid-way', () => {
  it('releases the lease at once and re-queues the process; the other worker continues it', async () => {
    // A long lease: the hand-over must not wait for it to expire.
    const longLease = { LEASE_SECONDS: '600' };
    const first = await h.startWorker(['--concurrency', '2'], longLease);
    const id = await h.http.start('slow', { sleepMs: 300 });
    await h.http.waitFor(id, (p) => p.steps.length >= 1, 60_000);
    expect(await terminate(first)).toBe(0);
    expect(first.output()).toMatch(/worker stopped/);

    const { rows } = await h.db.pool.query(
      `SELECT p.status, p.lease_token,
              (SELECT count(*)::int FROM pgboss.job j
                WHERE j.data->>'processId' = p.id::text AND j.state = 'created') AS queued
         FROM orchestrator.processes p WHERE p.id = $1`,
      [id],
    );
    expect(rows[0]).toEqual({ status: 'resumed', lease_token: null, queued: 1 });

    const second = await h.startWorker(['--concurrency', '2'], longLease);
    const done = await h.http.waitForStatus(id, 'completed', 60_000);
    expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
    expect(done.steps).toHaveLength(5);
    expect(await terminate(second)).toBe(0);
  });
});

describe('SIGTERM while a step outlives the shutdown timeout', () => {
  it('aborts the step after SHUTDOWN_TIMEOUT_SECONDS, gives the process back and exits 0', async () => {
    const worker = await h.startWorker(['--concurrency', '1'], {
      SHUTDOWN_TIMEOUT_SECONDS: '1',
      LEASE_SECONDS: '600',
    });
    const id = await h.http.start('slow', { sleepMs: 600_000 });
    await h.http.waitForStatus(id, 'running', 60_000);
    expect(await terminate(worker)).toBe(0);
    const p = (await h.http.get(`/api/processes/${id}`)).body;
    expect(p.status).toBe('resumed');
    expect(p.steps).toEqual([]);
    expect(await liveJobs(id)).toBe(1);
    // Not to be run again here: abort it (a resumed process can be aborted).
    expect((await h.http.put(`/api/processes/${id}/abort`)).status).toBe(204);
  });
});

describe('500 processes across 2 workers', () => {
  it('all complete, with exactly one committed row per step', async () => {
    const workers = await Promise.all([
      h.startWorker(['--concurrency', '4'], { ...env, LOG_LEVEL: 'debug' }),
      h.startWorker(['--concurrency', '4'], { ...env, LOG_LEVEL: 'debug' }),
    ]);
    const ids: string[] = [];
    for (let batch = 0; batch < 25; batch++) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            h.http.start((batch * 20 + i) % 5 === 0 ? 'noop_task' : 'noop'),
          ),
        )),
      );
    }
    expect(ids).toHaveLength(500);
    await expect
      .poll(
        async () =>
          (
            await h.db.pool.query(
              `SELECT count(*)::int AS n FROM orchestrator.processes
                WHERE id = ANY($1::uuid[]) AND status = 'completed'`,
              [ids],
            )
          ).rows[0].n,
        { timeout: 120_000, interval: 250 },
      )
      .toBe(500);
    const { rows } = await h.db.pool.query(
      `SELECT count(*)::int AS steps, count(DISTINCT (process_id, step_index))::int AS distinct_steps
         FROM orchestrator.process_steps WHERE process_id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows[0]).toMatchObject({ steps: 1500, distinct_steps: 1500 });
    const registry = await loadRegistry(`${root}/workflows`);
    expect(await checkInvariants(h.db.pool, { registry, checkJobs: true })).toEqual([]);
    // Both workers took part, and neither logged an error.
    for (const w of workers) expect(w.output()).toMatch(/"msg":"process done"/);
    for (const w of workers) expect(w.output()).not.toMatch(/"level":"error"/);
    for (const w of workers) expect(await terminate(w)).toBe(0);
  });
});

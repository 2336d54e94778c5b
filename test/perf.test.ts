// The performance work must not cost correctness: status counters exact after every transition,
// step commits as HOT updates, bounded concurrency in the threadpool executor, aborts through
// the step pool's broadcast channel.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/config/logger.ts';
import { publishNowhere } from '../src/db/events.ts';
import { statusCounts } from '../src/db/process-list.ts';
import { commitStep, type StepCommit } from '../src/db/step-commits.ts';
import { commitPlainSteps } from '../src/db/step-commits.ts';
import { createCommitBatcher } from '../src/engine/commit-batcher.ts';
import { loadRegistry } from '../src/engine/registry.ts';
import { StepAbandonedError } from '../src/engine/step-lanes.ts';
import { createStepPool } from '../src/engine/step-pool.ts';
import { createThreadpoolExecutor } from '../src/executors/threadpool.ts';
import { seedProcess, claimProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';
import { root } from './support/paths.ts';

// No invariant check: some tests claim and commit processes by hand and leave them mid-way.
const h = useHarness({ executor: 'threadpool', invariants: false });

/** What the counters must say: a full count over the table. */
async function countedByScan() {
  const { rows } = await h.db.pool.query<{ status: string; isTask: boolean; n: string }>(
    `SELECT status, is_task AS "isTask", count(*) AS n FROM orchestrator.processes GROUP BY 1, 2`,
  );
  const processCounts: Record<string, number> = {};
  const taskCounts: Record<string, number> = {};
  for (const r of rows) (r.isTask ? taskCounts : processCounts)[r.status] = Number(r.n);
  return { processCounts, taskCounts };
}

async function expectCountsExact() {
  const [kept, scanned, viaApi] = await Promise.all([
    statusCounts(h.db.pool),
    countedByScan(),
    h.http.get('/api/processes/status-counts'),
  ]);
  expect(kept).toEqual(scanned);
  expect(viaApi.body).toEqual(scanned);
}

describe('status counts', () => {
  it('stay exact through every transition: start, run, suspend, resume, fail, abort, delete', async () => {
    await expectCountsExact();
    const done = await h.http.start('noop');
    await h.http.waitForStatus(done, 'completed');
    await expectCountsExact();

    const suspended = await h.http.start('hello', { name: 'counts' });
    await h.http.waitForStatus(suspended, 'suspended');
    await expectCountsExact();
    expect(
      (await h.http.put(`/api/processes/${suspended}/resume`, { confirmed: true })).status,
    ).toBe(204);
    await h.http.waitForStatus(suspended, 'completed');
    await expectCountsExact();

    const failed = await h.http.start('flaky', { failTimes: 1 });
    await h.http.waitForStatus(failed, 'failed');
    await expectCountsExact();
    expect((await h.http.put(`/api/processes/${failed}/resume`)).status).toBe(204);
    await h.http.waitForStatus(failed, 'completed');
    await expectCountsExact();

    const aborted = await h.http.start('hello', { name: 'abort me' });
    await h.http.waitForStatus(aborted, 'suspended');
    expect((await h.http.put(`/api/processes/${aborted}/abort`)).status).toBe(204);
    await expectCountsExact();

    const task = await h.http.start('noop_task');
    await h.http.waitForStatus(task, 'completed');
    await expectCountsExact();
    expect((await statusCounts(h.db.pool)).taskCounts.completed).toBe(1);

    await h.db.pool.query('DELETE FROM orchestrator.processes WHERE id = $1', [task]);
    await expectCountsExact();
    expect((await statusCounts(h.db.pool)).taskCounts).toEqual({});
  });

  it('stay exact under concurrent starts and commits', async () => {
    const ids = await Promise.all(Array.from({ length: 60 }, () => h.http.start('noop')));
    for (const id of ids) await h.http.waitForStatus(id, 'completed', 60_000);
    await expectCountsExact();
  });

  it('follow bulk inserts and deletes, and are zero after the table is truncated', async () => {
    const other = await h.otherDatabase();
    await seedProcess(other.pool);
    expect((await statusCounts(other.pool)).processCounts).toEqual({ created: 1 });
    // One statement, many rows of mixed statuses, as a bulk load writes them.
    await other.pool.query(
      `INSERT INTO orchestrator.processes (id, workflow_name, status, is_task, target)
         SELECT gen_random_uuid(), 'noop', (ARRAY['completed', 'failed', 'suspended'])[1 + i % 3],
                i % 2 = 0, 'modify'
           FROM generate_series(1, 600) i`,
    );
    expect(await statusCounts(other.pool)).toEqual({
      processCounts: { created: 1, completed: 100, failed: 100, suspended: 100 },
      taskCounts: { completed: 100, failed: 100, suspended: 100 },
    });
    await other.pool.query(`DELETE FROM orchestrator.processes WHERE status = 'failed'`);
    expect(await statusCounts(other.pool)).toEqual({
      processCounts: { created: 1, completed: 100, suspended: 100 },
      taskCounts: { completed: 100, suspended: 100 },
    });
    await other.pool.query('TRUNCATE orchestrator.processes CASCADE');
    expect(await statusCounts(other.pool)).toEqual({ processCounts: {}, taskCounts: {} });
  });
});

describe('step commits', () => {
  it('update the process row in place (HOT) while it keeps running', async () => {
    const claimed = await claimedNoop();
    // A connection of its own: statistics not yet flushed by other statements would count too.
    const tx = new pg.Client({ connectionString: h.db.url });
    await tx.connect();
    try {
      await tx.query('BEGIN');
      const held = await commitStep(tx, firstStep(claimed, {}));
      expect(held.held).toBe(true);
      const { rows } = await tx.query<{ upd: number; hot: number }>(
        `SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_xact_user_tables
          WHERE schemaname = 'orchestrator' AND relname = 'processes'`,
      );
      expect(rows[0]).toEqual({ upd: 1, hot: 1 });
      await tx.query('COMMIT');
    } finally {
      await tx.end();
    }
  });
});

async function claimedNoop(): Promise<{ id: string; token: string }> {
  const id = await seedProcess(h.db.pool);
  const claim = await claimProcess(h.db.pool, id, 'test', 30);
  expect(claim).toBeDefined();
  return { id, token: claim!.leaseToken };
}

function firstStep(p: { id: string; token: string }, state: object = { n: 1 }): StepCommit {
  return {
    id: p.id,
    leaseToken: p.token,
    index: 0,
    name: 'One',
    stepStatus: 'success',
    state: state as StepCommit['state'],
    startedAt: new Date(),
    createdBy: null,
    processStatus: 'running',
    nextIndex: 1,
    nextAttempt: 1,
    leaseSeconds: 30,
  };
}

async function clearedSteps(ids: string[]): Promise<string[]> {
  const { rows } = await h.db.pool.query<{ id: string }>(
    `SELECT process_id AS id FROM orchestrator.process_steps WHERE process_id = ANY($1::uuid[]) AND status = 'success'`,
    [ids],
  );
  return rows.map((r) => r.id).sort();
}

describe('group commit', () => {
  it('fences every commit of a batch by its own lease: a lost lease writes nothing', async () => {
    const [a, b, c] = [await claimedNoop(), await claimedNoop(), await claimedNoop()];
    // b's lease is revoked (as an abort does) before the batch commits.
    await h.db.pool.query(`UPDATE orchestrator.processes SET lease_token = NULL WHERE id = $1`, [
      b.id,
    ]);
    const held = await commitPlainSteps(h.db.pool, [firstStep(a), firstStep(b), firstStep(c)], 30);
    expect(held.map((r) => r.held)).toEqual([true, false, true]);
    expect(await clearedSteps([a.id, b.id, c.id])).toEqual([a.id, c.id].sort());
    const { rows } = await h.db.pool.query(
      `SELECT id, step_index AS "stepIndex", last_step AS "lastStep", status FROM orchestrator.processes WHERE id = ANY($1::uuid[]) ORDER BY id`,
      [[a.id, c.id]],
    );
    for (const r of rows)
      expect(r).toMatchObject({ stepIndex: 1, lastStep: 'One', status: 'running' });
  });

  it('collects commits that arrive while one is in flight, and falls back to single commits when a batch fails', async () => {
    const ps = [await claimedNoop(), await claimedNoop(), await claimedNoop(), await claimedNoop()];
    const singles: string[] = [];
    const batcher = createCommitBatcher({
      db: h.db.pool,
      leaseSeconds: 30,
      maxInFlight: 1,
      single: (commit) => {
        singles.push(commit.id);
        return commitStep(h.db.pool, commit);
      },
    });
    // A BigInt cannot be serialised: the batch holding it fails as a whole.
    const results = await Promise.allSettled([
      batcher.commit(firstStep(ps[0]!)),
      batcher.commit(firstStep(ps[1]!)),
      batcher.commit(firstStep(ps[2]!, { n: 1n })),
      batcher.commit(firstStep(ps[3]!)),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    // The first went alone; the other three went as one batch, then one by one after it failed.
    expect(singles).toEqual([ps[0]!.id, ps[1]!.id, ps[2]!.id, ps[3]!.id]);
    expect(await clearedSteps(ps.map((p) => p.id))).toEqual(
      [ps[0]!.id, ps[1]!.id, ps[3]!.id].sort(),
    );
  });
});

describe('threadpool executor', () => {
  it('runs at most maxRunning processes at once and still runs them all', async () => {
    const registry = await loadRegistry(`${root}/workflows`);
    const steps = createStepPool({ workflowsDir: `${root}/workflows`, maxThreads: 1 });
    const executor = createThreadpoolExecutor({
      pool: h.db.pool,
      registry,
      steps,
      leaseSeconds: 30,
      logger: silentLogger,
      publish: publishNowhere,
      maxRunning: 3,
    });
    try {
      const ids = Array.from({ length: 20 }, () => randomUUID());
      for (const id of ids) {
        await seedProcess(h.db.pool, { id, workflowName: 'slow', input: { sleepMs: 20 } });
      }
      for (const id of ids) executor.dispatcher.afterCommit({ processId: id } as never);
      let most = 0;
      const deadline = Date.now() + 60_000;
      for (;;) {
        most = Math.max(most, executor.runner.active().length);
        const { rows } = await h.db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM orchestrator.processes WHERE id = ANY($1::uuid[]) AND status = 'completed'`,
          [ids],
        );
        if (rows[0]?.n === ids.length) break;
        if (Date.now() > deadline) throw new Error(`only ${rows[0]?.n} of 20 completed`);
        await sleep(5);
      }
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(3);
    } finally {
      await executor.stop(5_000);
      await steps.close();
    }
  });
});

describe('step pool', () => {
  it('aborts steps whose abort was announced before their thread was listening', async () => {
    const steps = createStepPool({ workflowsDir: `${root}/workflows`, maxThreads: 1 });
    try {
      const task = (processId: string) => ({
        workflow: 'slow',
        index: 0,
        state: { sleepMs: 60_000 },
        processId,
        attempt: 1,
      });
      const first = new AbortController();
      const second = new AbortController();
      // The thread is still starting when the second abort goes out: only the repeat reaches it.
      const running = steps.run(task('a'), first.signal);
      const queued = steps.run(task('b'), second.signal);
      const abandoned = expect(queued).rejects.toBeInstanceOf(StepAbandonedError);
      second.abort();
      await sleep(100);
      first.abort();
      // Both settle long before 60 s: `slow` ends early without error when its signal reaches it,
      // and a step aborted before its thread took it never starts.
      const firstOutcome = await running.catch((err: unknown) => {
        if (err instanceof StepAbandonedError) return 'abandoned';
        throw err;
      });
      expect([{ ok: true, delta: { visited: [1] } }, 'abandoned']).toContainEqual(firstOutcome);
      await abandoned;
    } finally {
      await steps.close();
    }
  });
});

// The global lock as a true pause, in both executors: running processes stop before their next
// step and give back their lease; nothing starts, resumes or is called back while it is set; and
// clearing it continues everything that stopped for it.
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { heartbeatLeases } from '../src/db/leases.ts';
import { client } from './support/api.ts';
import { seedLeased, type TestDatabase } from './support/database.ts';
import { describeBothModes, useHarness } from './support/harness.ts';
import { terminate } from './support/workers.ts';

type Http = ReturnType<typeof client>;

async function counts(db: Pick<TestDatabase, 'pool'>) {
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*)::int FROM orchestrator.processes) AS processes,
            (SELECT count(*)::int FROM orchestrator.process_steps) AS steps,
            (SELECT count(*)::int FROM orchestrator.input_states) AS inputs`,
  );
  return rows[0];
}

const PAUSE_TEST_LEASE = { owner: 'pause-test', leaseSeconds: 60 };

function pauseSuite(ctx: () => { http: Http; db: Pick<TestDatabase, 'pool'> }) {
  it('stops running processes before their next step: PAUSING, then PAUSED; unpaused they finish', async () => {
    const { http, db } = ctx();
    const ids = await Promise.all([1, 2, 3].map(() => http.start('slow', { sleepMs: 400 })));
    for (const id of ids)
      await http.waitFor(id, (p) => p.status === 'running' && p.steps.length >= 1);
    const locked = await http.put('/api/settings/status', { globalLock: true });
    expect(locked.body).toMatchObject({ globalLock: true, engineStatus: 'PAUSING' });
    expect(locked.body.runningProcesses).toBeGreaterThan(0);
    for (const id of ids) await http.waitForStatus(id, 'resumed', 10_000);
    const status = (await http.get('/api/settings/status')).body;
    expect(status).toEqual({ globalLock: true, runningProcesses: 0, engineStatus: 'PAUSED' });
    // Stopped mid-way, lease given back, no step left half-done.
    const { rows } = await db.pool.query(
      `SELECT id, step_index AS "stepIndex", lease_token AS "leaseToken" FROM orchestrator.processes
        WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    for (const r of rows) {
      expect(r.leaseToken).toBeNull();
      expect(r.stepIndex).toBeGreaterThan(0);
      expect(r.stepIndex).toBeLessThan(5);
    }
    // Still paused a while later: nothing picked them up.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const id of ids)
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('resumed');

    const unlocked = await http.put('/api/settings/status', { globalLock: false });
    expect(unlocked.body.engineStatus).toBe('RUNNING');
    for (const id of ids) {
      const done = await http.waitForStatus(id, 'completed', 20_000);
      expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it('while paused, starts, resumes and callbacks answer 503 engine_paused and write nothing', async () => {
    const { http, db } = ctx();
    const suspended = await http.start('hello', { name: 'Ada' });
    await http.waitForStatus(suspended, 'suspended');
    const failed = await http.start('flaky', { failTimes: 1 });
    await http.waitForStatus(failed, 'failed');
    const cb = await http.start('callback_demo', {});
    const url = (await http.waitForStatus(cb, 'awaiting_callback')).currentState.callbackUrl;
    await http.put('/api/settings/status', { globalLock: true });
    const before = await counts(db);
    for (const r of [
      await http.post('/api/processes/noop', {}),
      await http.put(`/api/processes/${suspended}/resume`, { confirmed: true }),
      await http.put(`/api/processes/${failed}/resume`),
      await http.post(new URL(url).pathname, { ok: true }),
    ]) {
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('engine_paused');
    }
    expect(await counts(db)).toEqual(before);
    expect((await http.get(`/api/processes/${cb}`)).body.status).toBe('awaiting_callback');
    await http.put('/api/settings/status', { globalLock: false });
    expect((await http.put(`/api/processes/${suspended}/resume`, { confirmed: true })).status).toBe(
      204,
    );
    expect((await http.post(new URL(url).pathname, { ok: true })).status).toBe(204);
    await http.waitForStatus(suspended, 'completed');
    await http.waitForStatus(cb, 'completed');
  });
}

describeBothModes('pause', (executor) => {
  const h = useHarness({ executor, workerArgs: ['--concurrency', '4'] });
  pauseSuite(() => ({ http: h.http, db: h.db }));

  if (executor === 'threadpool') {
    // A start or claim whose statement read the lock before the pause committed, and commits after
    // it: the pause waits for it, so PAUSED is never said while that lease is about to appear.
    it('a claim in flight when the lock is set is counted: PAUSING, never a PAUSED it contradicts', async () => {
      const id = randomUUID();
      const tx = await h.db.pool.connect();
      try {
        await tx.query('BEGIN');
        await seedLeased(tx, PAUSE_TEST_LEASE, { id });
        let settled = false;
        const pausing = h.http.put('/api/settings/status', { globalLock: true }).finally(() => {
          settled = true;
        });
        await new Promise((r) => setTimeout(r, 500));
        expect(settled).toBe(false);
        await tx.query('COMMIT');
        const locked = await pausing;
        expect(locked.status).toBe(200);
        expect(locked.body).toMatchObject({ globalLock: true, engineStatus: 'PAUSING' });
        expect(locked.body.runningProcesses).toBe(1);
      } finally {
        await tx.query('ROLLBACK').catch(() => undefined);
        tx.release();
        await h.db.pool.query(`DELETE FROM orchestrator.processes WHERE id = $1`, [id]);
        await h.http.put('/api/settings/status', { globalLock: false });
      }
    });

    it('while paused, a runner late with its heartbeat does not revive its expired lease', async () => {
      const id = randomUUID();
      const lease = await seedLeased(h.db.pool, PAUSE_TEST_LEASE, { id });
      try {
        await h.db.pool.query(
          `UPDATE orchestrator.processes SET lease_expires_at = now() - interval '1 second'
            WHERE id = $1`,
          [id],
        );
        // Not paused: a late heartbeat keeps an expired lease nobody took over.
        expect(await heartbeatLeases(h.db.pool, [lease], 60)).toEqual([]);
        await h.db.pool.query(
          `UPDATE orchestrator.processes SET lease_expires_at = now() - interval '1 second'
            WHERE id = $1`,
          [id],
        );
        const locked = await h.http.put('/api/settings/status', { globalLock: true });
        expect(locked.body.engineStatus).toBe('PAUSED');
        expect(await heartbeatLeases(h.db.pool, [lease], 60)).toEqual([id]);
        expect((await h.http.get('/api/settings/status')).body.engineStatus).toBe('PAUSED');
      } finally {
        await h.db.pool.query(`DELETE FROM orchestrator.processes WHERE id = $1`, [id]);
        await h.http.put('/api/settings/status', { globalLock: false });
      }
    });
  }

  if (executor === 'worker') {
    it('processes whose jobs a worker consumed while paused get new jobs when unpaused', async () => {
      await terminate(h.workers[0]!);
      const ids = await Promise.all([1, 2, 3, 4, 5].map(() => h.http.start('noop')));
      await h.http.put('/api/settings/status', { globalLock: true });
      await h.startWorker(['--concurrency', '4']);
      // The worker fetches the jobs, cannot claim their processes, and completes the jobs.
      const live = async () =>
        (
          await h.db.pool.query(
            `SELECT count(*)::int AS n FROM pgboss.job
            WHERE data->>'processId' = ANY($1::text[]) AND state IN ('created', 'retry', 'active')`,
            [ids],
          )
        ).rows[0].n;
      const deadline = Date.now() + 20_000;
      while ((await live()) > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(await live()).toBe(0);
      for (const id of ids)
        expect((await h.http.get(`/api/processes/${id}`)).body.status).toBe('created');
      await h.http.put('/api/settings/status', { globalLock: false });
      for (const id of ids) await h.http.waitForStatus(id, 'completed', 20_000);
    });
  }
});

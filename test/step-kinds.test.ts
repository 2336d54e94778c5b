// The step kinds beyond plain steps, end to end through the REST API against a real Postgres:
// retry steps, callback steps, step groups and forms with pages, in both executors.
import { expect, it } from 'vitest';
import { client } from './support/api.ts';
import type { TestDatabase } from './support/database.ts';
import { describeBothModes, useHarness } from './support/harness.ts';

type Http = ReturnType<typeof client>;

async function rowCounts(db: Pick<TestDatabase, 'pool'>) {
  const { rows } = await db.pool.query<{ p: string; s: string; i: string; c: string }>(
    `SELECT (SELECT count(*) FROM orchestrator.processes) AS p,
            (SELECT count(*) FROM orchestrator.process_steps) AS s,
            (SELECT count(*) FROM orchestrator.input_states) AS i,
            (SELECT count(*) FROM orchestrator.callbacks) AS c`,
  );
  return rows[0];
}

/** The token of a callback URL stored in state by callback_demo's action. */
const tokenOf = (url: string) => url.split('/').pop()!;

/** The examples' behaviour, the same in either executor. */
function stepKindSuite(ctx: () => { http: Http; db: Pick<TestDatabase, 'pool'> }) {
  it('retry_demo with failTimes 2 goes waiting twice and completes on its own', async () => {
    const { http } = ctx();
    const id = await http.start('retry_demo', { failTimes: 2, backoffSeconds: 0.2 });
    const waiting = await http.waitForStatus(id, 'waiting');
    expect(waiting.retryAt).toEqual(expect.any(String));
    expect(waiting.steps.at(-1)).toMatchObject({ name: 'Call device', status: 'waiting' });
    expect(waiting.steps.at(-1).error.message).toMatch(/did not answer/);
    const done = await http.waitForStatus(id, 'completed');
    expect(done.currentState).toMatchObject({ answeredOnAttempt: 3 });
    // One waiting row, updated per attempt (retries counted), then the success.
    expect(
      done.steps.map((s: { status: string; retries: number }) => [s.status, s.retries]),
    ).toEqual([
      ['waiting', 1],
      ['success', 0],
    ]);
  });

  it('retry_demo with failTimes 9 ends failed after 5 attempts; resume retries at once', async () => {
    const { http } = ctx();
    const id = await http.start('retry_demo', { failTimes: 9, backoffSeconds: 0.05 });
    const failed = await http.waitForStatus(id, 'failed', 30_000);
    expect(failed.attempt).toBe(6);
    expect(failed.retryAt).toBeNull();
    expect(failed.failedReason).toMatch(/attempt 5/);
    expect(failed.steps).toHaveLength(1);
    expect(failed.steps[0]).toMatchObject({ status: 'failed', retries: 4 });
    // A user retries: one more attempt (the sixth), which fails again.
    expect((await http.put(`/api/processes/${id}/resume`)).status).toBe(204);
    const again = await http.waitFor(id, (p) => p.status === 'failed' && p.attempt === 7);
    expect(again.failedReason).toMatch(/attempt 6/);
  });

  it('a waiting process resumed by a user runs at once, and only once', async () => {
    const { http, db } = ctx();
    const id = await http.start('retry_demo', { failTimes: 1, backoffSeconds: 30 });
    await http.waitForStatus(id, 'waiting');
    expect((await http.put(`/api/processes/${id}/resume`)).status).toBe(204);
    const done = await http.waitForStatus(id, 'completed', 10_000);
    expect(done.currentState.answeredOnAttempt).toBe(2);
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM orchestrator.process_steps WHERE process_id = $1 AND status = 'success'`,
      [id],
    );
    expect(rows[0].n).toBe(1);
  });

  it('callback_demo waits for its callback, records progress, and completes once', async () => {
    const { http } = ctx();
    const id = await http.start('callback_demo', {});
    const awaiting = await http.waitForStatus(id, 'awaiting_callback');
    const url: string = awaiting.currentState.callbackUrl;
    expect(url).toMatch(new RegExp(`/api/processes/${id}/callback/[A-Za-z0-9_-]{43}$`));
    expect(awaiting.callback).toMatchObject({ status: 'pending', progress: null });
    expect(new Date(awaiting.callback.expiresAt).getTime()).toBeGreaterThan(Date.now() + 200_000);
    const path = new URL(url).pathname;
    const token = tokenOf(url);

    // Wrong tokens: 404, whatever their shape; nothing written.
    const wrong = `/api/processes/${id}/callback/${'A'.repeat(43)}`;
    expect((await http.post(wrong, { ok: true })).body.error.code).toBe('callback_not_found');
    expect((await http.post(`/api/processes/${id}/callback/short`, {})).status).toBe(404);
    expect(
      (await http.post(`/api/processes/00000000-0000-4000-8000-000000000000/callback/${token}`, {}))
        .status,
    ).toBe(404);

    expect((await http.post(`${path}/progress`, { percent: 40 })).status).toBe(204);
    const progressed = (await http.get(`/api/processes/${id}`)).body;
    expect(progressed.status).toBe('awaiting_callback');
    expect(progressed.callback.progress).toEqual({ percent: 40 });

    expect((await http.post(path, { job: 17, ok: true })).status).toBe(204);
    const done = await http.waitForStatus(id, 'completed');
    expect(done.currentState).toMatchObject({ result: { job: 17, ok: true }, finished: true });
    expect(done.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['Run job', 'awaiting_callback'],
      ['Run job', 'success'],
      ['Finish', 'success'],
    ]);
    expect(done.steps[1].createdBy).toBe('callback');
    // Used: a second answer and late progress are refused.
    const second = await http.post(path, { job: 18 });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('not_awaiting_callback');
    expect((await http.post(`${path}/progress`, { percent: 90 })).status).toBe(409);
    expect((await http.get(`/api/processes/${id}`)).body.currentState.result.job).toBe(17);
  });

  it('of concurrent callbacks exactly one applies', async () => {
    const { http, db } = ctx();
    const id = await http.start('callback_demo', {});
    const path = new URL(
      (await http.waitForStatus(id, 'awaiting_callback')).currentState.callbackUrl,
    ).pathname;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => http.post(path, { answer: i })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([204, 409, 409, 409, 409, 409, 409, 409]);
    await http.waitForStatus(id, 'completed');
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM orchestrator.process_steps
        WHERE process_id = $1 AND name = 'Run job' AND status = 'success'`,
      [id],
    );
    expect(rows[0].n).toBe(1);
  });

  it('a callback that does not come in time fails the process', async () => {
    const { http } = ctx();
    const id = await http.start('callback_demo', { timeoutSeconds: 1 });
    const path = new URL(
      (await http.waitForStatus(id, 'awaiting_callback')).currentState.callbackUrl,
    ).pathname;
    const failed = await http.waitForStatus(id, 'failed', 15_000);
    expect(failed.failedReason).toBe('callback timed out');
    expect(failed.callback.status).toBe('expired');
    expect(failed.steps.at(-1)).toMatchObject({ name: 'Run job', status: 'failed' });
    expect((await http.post(path, { late: true })).body.error.code).toBe('not_awaiting_callback');
    // Resumed, the step runs again with a new callback; the old token stays refused.
    expect((await http.put(`/api/processes/${id}/resume`)).status).toBe(204);
    const again = await http.waitFor(
      id,
      (p) => p.status === 'awaiting_callback' && p.currentState.callbackUrl !== undefined,
    );
    const newPath = new URL(again.currentState.callbackUrl).pathname;
    expect(newPath).not.toBe(path);
    expect((await http.post(path, {})).status).toBe(409);
    expect((await http.post(newPath, { late: false })).status).toBe(204);
    await http.waitForStatus(id, 'completed');
  });

  it('sleep_demo waits durably, holding no lease, and wakes at its time', async () => {
    const { http, db } = ctx();
    const id = await http.start('sleep_demo', { seconds: 1 });
    const waiting = await http.waitForStatus(id, 'waiting');
    expect(waiting.steps.at(-1)).toMatchObject({ name: 'Wait', status: 'waiting' });
    const { rows } = await db.pool.query(
      `SELECT lease_token AS "leaseToken" FROM orchestrator.processes WHERE id = $1`,
      [id],
    );
    expect(rows[0].leaseToken).toBeNull();
    const done = await http.waitForStatus(id, 'completed', 15_000);
    expect(done.currentState.wokeAt).toBeGreaterThanOrEqual(
      new Date(waiting.retryAt).getTime() - 50,
    );
    expect(
      done.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`),
    ).toEqual(['Note the time:success', 'Wait:waiting', 'Wait:success', 'Wake up:success']);
  });

  it('provision_port walks through both pages, shows its group and a form built from state', async () => {
    const { http, db } = ctx();
    const described = (await http.get('/api/workflows/provision_port')).body;
    expect(described.inputPages).toBe(2);
    expect(described.inputSchema.properties.device.enum).toEqual(['leaf-1', 'leaf-2', 'spine-1']);
    expect(described.steps.map((s: { group: string | null }) => s.group)).toEqual([
      'Configure',
      'Configure',
      null,
    ]);

    const before = await rowCounts(db);
    const page1 = await http.post('/api/processes/provision_port', { device: 'leaf-2' });
    expect(page1.status).toBe(422);
    expect(page1.body.error.code).toBe('form_incomplete');
    expect(page1.body.error.details.page).toBe(1);
    expect(page1.body.error.details.form.properties.port.enum).toEqual(['Ethernet1', 'Ethernet2']);
    const none = await http.post('/api/processes/provision_port', []);
    expect(none.status).toBe(422);
    expect(none.body.error.details.page).toBe(0);
    const badPort = await http.post('/api/processes/provision_port', [
      { device: 'leaf-2' },
      { port: 'Ethernet4' },
    ]);
    expect(badPort.status).toBe(400);
    expect(badPort.body.error.details[0]).toMatchObject({ page: 1, path: ['port'] });
    const tooMany = await http.post('/api/processes/provision_port', [
      { device: 'leaf-2' },
      { port: 'Ethernet1' },
      {},
    ]);
    expect(tooMany.status).toBe(400);
    expect(await rowCounts(db)).toEqual(before);

    const id = await http.start('provision_port', [{ device: 'leaf-2' }, { port: 'Ethernet2' }]);
    const suspended = await http.waitForStatus(id, 'suspended');
    expect(
      suspended.steps.map((s: { name: string; group: string | null }) => [s.name, s.group]),
    ).toEqual([
      ['Reserve port', 'Configure'],
      ['Apply config', 'Configure'],
      ['Confirm', null],
    ]);
    expect(suspended.formPages).toBe(1);
    expect(suspended.form.properties.device).toMatchObject({ const: 'leaf-2', readOnly: true });
    expect(suspended.form.properties.port).toMatchObject({ const: 'Ethernet2', readOnly: true });
    expect(suspended.form.required).toEqual(['confirmed']);
    const bad = await http.put(`/api/processes/${id}/resume`, { confirmed: 'yes' });
    expect(bad.status).toBe(400);
    expect((await http.put(`/api/processes/${id}/resume`, { confirmed: true })).status).toBe(204);
    const done = await http.waitForStatus(id, 'completed');
    expect(done.currentState).toMatchObject({
      device: 'leaf-2',
      port: 'Ethernet2',
      reserved: 'leaf-2:Ethernet2',
      confirmed: true,
    });
  });
}

describeBothModes('step kinds', (executor) => {
  const h = useHarness({ executor, workerArgs: ['--concurrency', '4'] });

  stepKindSuite(() => ({ http: h.http, db: h.db }));

  if (executor === 'threadpool') {
    it('a retry and a callback timeout due while no API runs happen after the restart', async () => {
      const id = await h.http.start('retry_demo', { failTimes: 1, backoffSeconds: 1 });
      const cb = await h.http.start('callback_demo', { timeoutSeconds: 1 });
      await h.http.waitForStatus(id, 'waiting');
      await h.http.waitForStatus(cb, 'awaiting_callback');
      const sleeper = await h.http.start('sleep_demo', { seconds: 2 });
      await h.http.waitForStatus(sleeper, 'waiting');
      await h.restartApi(() => new Promise((r) => setTimeout(r, 1_500)));
      expect(
        (await h.http.waitForStatus(sleeper, 'completed', 15_000)).currentState.sleptMs,
      ).toBeGreaterThanOrEqual(1_950);
      expect(
        (await h.http.waitForStatus(id, 'completed', 15_000)).currentState.answeredOnAttempt,
      ).toBe(2);
      expect((await h.http.waitForStatus(cb, 'failed', 15_000)).failedReason).toBe(
        'callback timed out',
      );
    });
  } else {
    it('a retry is a job that starts at its time, replaced when a user resumes', async () => {
      const id = await h.http.start('retry_demo', { failTimes: 1, backoffSeconds: 60 });
      await h.http.waitForStatus(id, 'waiting');
      const jobs = async () =>
        (
          await h.db.pool.query<{ state: string; delayed: boolean }>(
            `SELECT state::text, start_after > now() + interval '30 seconds' AS delayed
             FROM pgboss.job WHERE data->>'processId' = $1 ORDER BY created_on`,
            [id],
          )
        ).rows;
      expect((await jobs()).filter((j) => j.state === 'created')).toEqual([
        { state: 'created', delayed: true },
      ]);
      expect((await h.http.put(`/api/processes/${id}/resume`)).status).toBe(204);
      await h.http.waitForStatus(id, 'completed');
      expect((await jobs()).map((j) => j.state).sort()).toEqual([
        'cancelled',
        'completed',
        'completed',
      ]);
    });
  }
});

// Repairing a failed step (skip it, or patch the state before the retry) and workflow versions,
// against a real Postgres.
import { describe, expect, it } from 'vitest';
import { client } from './support/api.ts';
import { useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

const h = useHarness({ executor: 'threadpool' });

const history = async (id: string) =>
  (
    await h.db.pool.query(
      `SELECT name, status, created_by AS "createdBy", error->>'name' AS error
         FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
      [id],
    )
  ).rows.map((r) => `${r.name}:${r.status}${r.error ? `:${r.error}` : ''}`);

describe('skip', () => {
  it('skips the failed step, records it skipped, and the process goes on', async () => {
    const id = await h.http.start('retry_demo', { failTimes: 9, backoffSeconds: 0.01 });
    await h.http.waitForStatus(id, 'failed', 20_000);
    expect((await h.http.put(`/api/processes/${id}/skip`)).status).toBe(204);
    const done = await h.http.waitForStatus(id, 'completed');
    expect(done.currentState.answeredOnAttempt).toBeUndefined();
    expect(await history(id)).toEqual(['Call device:failed:Error', 'Call device:skipped']);
    expect(done.steps.at(-1)).toMatchObject({ status: 'skipped', createdBy: 'anonymous' });
  });

  it('refuses a process that has no failed step (409 not_repairable), writing nothing', async () => {
    const id = await h.http.start('hello', { name: 'Ada' });
    await h.http.waitForStatus(id, 'suspended');
    const before = await history(id);
    const r = await h.http.put(`/api/processes/${id}/skip`);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('not_repairable');
    expect(await history(id)).toEqual(before);
    expect(
      (await h.http.put('/api/processes/00000000-0000-4000-8000-000000000000/skip')).status,
    ).toBe(404);
    await h.http.put(`/api/processes/${id}/abort`);
  });
});

describe('patch the state before the retry', () => {
  it('retries the failed step on the patched state, recorded in the step history', async () => {
    const id = await h.http.start('retry_demo', { failTimes: 9, backoffSeconds: 0.01 });
    await h.http.waitForStatus(id, 'failed', 20_000);
    const r = await h.http.put(`/api/processes/${id}/resume`, { state: { failTimes: 0 } });
    expect(r.status).toBe(204);
    const done = await h.http.waitForStatus(id, 'completed');
    expect(done.currentState).toMatchObject({ failTimes: 0, answeredOnAttempt: 6 });
    expect(await history(id)).toEqual([
      'Call device:failed:Error',
      'Call device:failed:StatePatched',
      'Call device:success',
    ]);
    const patched = done.steps.find(
      (s: { error?: { name: string } }) => s.error?.name === 'StatePatched',
    );
    expect(patched.error.message).toBe('state patched by anonymous before the retry: failTimes');
    const { rows } = await h.db.pool.query(
      `SELECT input FROM orchestrator.input_states WHERE process_id = $1 AND input_type = 'user_input'`,
      [id],
    );
    expect(rows.map((x) => x.input)).toEqual([{ failTimes: 0 }]);
  });

  it('refuses bad patches and processes that did not fail, writing nothing', async () => {
    const id = await h.http.start('flaky', { failTimes: 5 });
    await h.http.waitForStatus(id, 'failed');
    const before = await history(id);
    for (const body of [{ state: 5 }, { state: {}, more: 1 }, { patch: {} }, [1]]) {
      const r = await h.http.put(`/api/processes/${id}/resume`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect(await history(id)).toEqual(before);
    const waiting = await h.http.start('retry_demo', { failTimes: 1, backoffSeconds: 60 });
    await h.http.waitForStatus(waiting, 'waiting');
    const r = await h.http.put(`/api/processes/${waiting}/resume`, { state: { failTimes: 0 } });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('not_repairable');
    for (const p of [id, waiting]) await h.http.put(`/api/processes/${p}/abort`);
  });
});

describe('workflow versions', () => {
  it('a process records its version; a changed workflow is named with both versions', async () => {
    const v1 = await h.startApi({ WORKFLOWS_DIR: fixtures('workflows-versions-1') });
    const id = await client(v1.url).start('versioned');
    await client(v1.url).waitForStatus(id, 'suspended');
    expect((await client(v1.url).get(`/api/processes/${id}`)).body.workflowVersion).toBe('1');
    await v1.close();
    const v2 = await h.startApi({ WORKFLOWS_DIR: fixtures('workflows-versions-2') });
    try {
      const r = await client(v2.url).put(`/api/processes/${id}/resume`, { ok: true });
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('workflow_changed');
      expect(r.body.error.message).toMatch(/started on version 1, the workflow is version 2/);
      expect(r.body.error.details).toEqual({ startedOn: '1', current: '2' });
      await client(v2.url).put(`/api/processes/${id}/abort`);
    } finally {
      await v2.close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';

const h = useHarness({ executor: 'threadpool' });

async function rowCounts() {
  const { rows } = await h.db.pool.query<{ p: number; s: number; i: number }>(
    `SELECT (SELECT count(*) FROM orchestrator.processes) AS p,
            (SELECT count(*) FROM orchestrator.process_steps) AS s,
            (SELECT count(*) FROM orchestrator.input_states) AS i`,
  );
  return rows[0];
}

describe('health and workflows', () => {
  it('answers health', async () => {
    expect(await h.http.get('/api/health')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('lists the example workflows with JSON Schema inputs', async () => {
    const r = await h.http.get('/api/workflows');
    expect(r.status).toBe(200);
    const names = r.body.map((w: { name: string }) => w.name);
    expect(names).toEqual(expect.arrayContaining(['hello', 'flaky', 'slow', 'noop', 'noop_task']));
    const hello = r.body.find((w: { name: string }) => w.name === 'hello');
    expect(hello).toMatchObject({ target: 'create', isTask: false });
    expect(hello.inputSchema).toMatchObject({
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string', minLength: 1 } },
    });
    expect(hello.steps.map((s: { name: string }) => s.name)).toEqual([
      'Greet',
      'Confirm',
      'Finish',
    ]);
  });

  it('describes one workflow and 404s an unknown one', async () => {
    expect((await h.http.get('/api/workflows/noop_task')).body).toMatchObject({
      name: 'noop_task',
      isTask: true,
      target: 'system',
    });
    const r = await h.http.get('/api/workflows/nope');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('workflow_not_found');
  });
});

describe('hello: created → suspended → completed', () => {
  it('runs, suspends with its form, rejects bad input without writing, and completes', async () => {
    const id = await h.http.start('hello', { name: 'World' });
    const suspended = await h.http.waitForStatus(id, 'suspended');
    expect(suspended.currentState).toEqual({ name: 'World', greeting: 'Hello, World!' });
    expect(suspended.lastStep).toBe('Confirm');
    expect(suspended.form).toMatchObject({
      type: 'object',
      properties: { confirmed: { type: 'boolean' } },
      required: ['confirmed'],
    });
    expect(suspended.steps.map((s: any) => [s.name, s.status])).toEqual([
      ['Greet', 'success'],
      ['Confirm', 'suspend'],
    ]);

    const before = await rowCounts();
    const bad = await h.http.put(`/api/processes/${id}/resume`, { confirmed: 'yes' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_error');
    expect(bad.body.error.details[0].path).toEqual(['confirmed']);
    expect(await rowCounts()).toEqual(before);
    expect((await h.http.get(`/api/processes/${id}`)).body.status).toBe('suspended');

    expect((await h.http.put(`/api/processes/${id}/resume`, { confirmed: true })).status).toBe(204);
    const done = await h.http.waitForStatus(id, 'completed');
    expect(done.currentState).toEqual({
      name: 'World',
      greeting: 'Hello, World!',
      confirmed: true,
      finished: true,
    });
    expect(done.steps.map((s: any) => [s.name, s.status])).toEqual([
      ['Greet', 'success'],
      ['Confirm', 'suspend'],
      ['Confirm', 'success'],
      ['Finish', 'success'],
    ]);
    expect(done.steps[3].stateDelta).toEqual({ finished: true });
    expect(done.form).toBeUndefined();

    const again = await h.http.put(`/api/processes/${id}/resume`, { confirmed: true });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_resumable');
  });

  it('rejects invalid input with zod issues and writes nothing', async () => {
    const before = await rowCounts();
    const r = await h.http.post('/api/processes/hello', { name: '' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'validation_error' });
    expect(r.body.error.details[0]).toMatchObject({ path: ['name'] });
    const missing = await h.http.post('/api/processes/hello', {});
    expect(missing.status).toBe(400);
    expect(await rowCounts()).toEqual(before);
  });

  it('rejects malformed JSON and unknown workflows, writing nothing', async () => {
    const before = await rowCounts();
    const bad = await h.http.post('/api/processes/hello', '{"name": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    const unknown = await h.http.post('/api/processes/nope', { name: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('workflow_not_found');
    expect(await rowCounts()).toEqual(before);
  });
});

describe('flaky: failed → resumed → completed', () => {
  it('fails with reason and traceback, and each resume retries the step with attempt + 1', async () => {
    const id = await h.http.start('flaky', { failTimes: 2 });
    let p = await h.http.waitForStatus(id, 'failed');
    expect(p.failedReason).toBe('attempt 1 of 3 fails on purpose');
    expect(p.traceback).toContain('Error: attempt 1 of 3 fails on purpose');
    expect(p.traceback).toContain('flaky.ts');
    expect(p.attempt).toBe(2);

    expect((await h.http.put(`/api/processes/${id}/resume`)).status).toBe(204);
    p = await h.http.waitFor(id, (x) => x.status === 'failed' && x.attempt === 3);
    expect(p.failedReason).toBe('attempt 2 of 3 fails on purpose');

    expect((await h.http.put(`/api/processes/${id}/resume`, {})).status).toBe(204);
    p = await h.http.waitForStatus(id, 'completed');
    expect(p.currentState).toEqual({ failTimes: 2, succeededOnAttempt: 3 });
    expect(p.failedReason).toBeNull();
    expect(p.steps.map((s: any) => s.status)).toEqual(['failed', 'failed', 'success']);
  });

  it('refuses form input for a process that is not suspended', async () => {
    const id = await h.http.start('flaky', { failTimes: 1 });
    await h.http.waitForStatus(id, 'failed');
    const r = await h.http.put(`/api/processes/${id}/resume`, { confirmed: true });
    expect(r.status).toBe(400);
    expect((await h.http.get(`/api/processes/${id}`)).body.status).toBe('failed');
  });
});

describe('abort', () => {
  it('aborts a running process: the step sees its signal and nothing more is committed', async () => {
    const id = await h.http.start('slow', { sleepMs: 60_000 });
    await h.http.waitForStatus(id, 'running');
    expect((await h.http.put(`/api/processes/${id}/abort`)).status).toBe(204);
    const p = await h.http.waitForStatus(id, 'aborted');
    expect(p.steps.map((s: any) => [s.name, s.status])).toEqual([['Abort', 'abort']]);
    // The running step ends early on its AbortSignal and frees the runner.
    await expect.poll(() => h.api.activeProcesses(), { timeout: 15_000 }).toEqual([]);
    const again = await h.http.put(`/api/processes/${id}/abort`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_finished');
  });

  it('aborts a suspended and a failed process', async () => {
    const a = await h.http.start('hello', { name: 'x' });
    const b = await h.http.start('flaky', { failTimes: 5 });
    await h.http.waitForStatus(a, 'suspended');
    await h.http.waitForStatus(b, 'failed');
    expect((await h.http.put(`/api/processes/${a}/abort`)).status).toBe(204);
    expect((await h.http.put(`/api/processes/${b}/abort`)).status).toBe(204);
    expect((await h.http.get(`/api/processes/${a}`)).body.status).toBe('aborted');
    expect((await h.http.get(`/api/processes/${b}`)).body.status).toBe('aborted');
    expect((await h.http.put(`/api/processes/${a}/resume`, { confirmed: true })).status).toBe(409);
  });

  it('404s an unknown id and 400s a malformed one', async () => {
    const unknown = await h.http.put('/api/processes/00000000-0000-4000-8000-000000000000/abort');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('process_not_found');
    const bad = await h.http.get('/api/processes/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_id');
    expect((await h.http.put('/api/processes/not-a-uuid/resume')).status).toBe(400);
    expect((await h.http.get('/api/processes/00000000-0000-4000-8000-000000000000')).status).toBe(
      404,
    );
  });
});

describe('listing', () => {
  it('filters, pages, sorts and counts', async () => {
    const t1 = await h.http.start('noop_task');
    const t2 = await h.http.start('noop_task');
    await h.http.waitForStatus(t1, 'completed');
    await h.http.waitForStatus(t2, 'completed');
    const tasks = await h.http.get('/api/processes?isTask=true');
    expect(tasks.body.total).toBe(2);
    expect(tasks.body.items.every((p: any) => p.isTask && p.workflowName === 'noop_task')).toBe(
      true,
    );

    const page = await h.http.get(
      '/api/processes?workflow=noop_task&limit=1&offset=1&sort=startedAt:asc',
    );
    expect(page.body.total).toBe(2);
    expect(page.body.items.map((p: any) => p.id)).toEqual([t2]);

    const failed = await h.http.get('/api/processes?status=failed,completed&workflow=noop_task');
    expect(failed.body.total).toBe(2);

    const counts = await h.http.get('/api/processes/status-counts');
    expect(counts.body.taskCounts.completed).toBe(2);

    for (const q of [
      'status=bogus',
      'limit=0',
      'limit=x',
      'sort=nope',
      'isTask=maybe',
      'unknown=1',
    ]) {
      const r = await h.http.get(`/api/processes?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('validation_error');
    }
  });

  it('applies input defaults', async () => {
    const id = await h.http.start('slow', { sleepMs: 0 });
    const p = await h.http.waitForStatus(id, 'completed');
    expect(p.currentState.visited).toEqual([1, 2, 3, 4, 5]);
    const d = await h.http.start('slow');
    expect((await h.http.get(`/api/processes/${d}`)).body.currentState.sleepMs).toBe(500);
    await h.http.put(`/api/processes/${d}/abort`);
  });

  it('answers unknown API routes with the error shape', async () => {
    const r = await h.http.get('/api/nothing-here');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('route_not_found');
  });
});

// Operators' actions on processes and tasks: delete, note, resume-all.
import { describe, expect, it } from 'vitest';
import { seedProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';

const h = useHarness({ executor: 'threadpool' });

const rows = async (id: string) =>
  (
    await h.db.pool.query(
      `SELECT (SELECT count(*)::int FROM orchestrator.processes WHERE id = $1) AS p,
              (SELECT count(*)::int FROM orchestrator.process_steps WHERE process_id = $1) AS s,
              (SELECT count(*)::int FROM orchestrator.input_states WHERE process_id = $1) AS i`,
      [id],
    )
  ).rows[0];

describe('DELETE /api/processes/:id', () => {
  it('deletes a task with its step rows and inputs', async () => {
    const id = await h.http.start('noop_task');
    await h.http.waitForStatus(id, 'completed');
    expect(await rows(id)).toEqual({ p: 1, s: 3, i: 1 });
    expect((await h.http.call('DELETE', `/api/processes/${id}`)).status).toBe(204);
    expect(await rows(id)).toEqual({ p: 0, s: 0, i: 0 });
    expect((await h.http.get(`/api/processes/${id}`)).status).toBe(404);
    expect((await h.http.call('DELETE', `/api/processes/${id}`)).body.error.code).toBe(
      'process_not_found',
    );
  });

  it('refuses workflows (400 not_a_task) and running tasks (409), deleting nothing', async () => {
    const wf = await h.http.start('noop');
    await h.http.waitForStatus(wf, 'completed');
    const r = await h.http.call('DELETE', `/api/processes/${wf}`);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('not_a_task');
    expect(await rows(wf)).toMatchObject({ p: 1 });
    const busy = await seedProcess(h.db.pool, { workflowName: 'noop_task', isTask: true });
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET status = 'running', lease_token = gen_random_uuid(),
              lease_owner = 'elsewhere', lease_expires_at = now() + interval '1 hour'
        WHERE id = $1`,
      [busy],
    );
    const refused = await h.http.call('DELETE', `/api/processes/${busy}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('process_running');
    expect(await rows(busy)).toMatchObject({ p: 1 });
    await h.http.put(`/api/processes/${busy}/abort`);
    expect((await h.http.call('DELETE', '/api/processes/not-a-uuid')).body.error.code).toBe(
      'invalid_id',
    );
  });
});

describe('PATCH /api/processes/:id', () => {
  it('sets and clears the note; a bad body is 400 and changes nothing', async () => {
    const id = await h.http.start('noop');
    await h.http.waitForStatus(id, 'completed');
    const set = await h.http.call('PATCH', `/api/processes/${id}`, { note: 'checked by Ada' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ id, note: 'checked by Ada', status: 'completed' });
    for (const bad of [
      { note: 5 },
      { note: 'x', other: 1 },
      {},
      '"text"',
      { note: 'x'.repeat(10_001) },
    ]) {
      const r = await h.http.call('PATCH', `/api/processes/${id}`, bad);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('validation_error');
    }
    expect((await h.http.get(`/api/processes/${id}`)).body.note).toBe('checked by Ada');
    expect(
      (await h.http.call('PATCH', `/api/processes/${id}`, { note: null })).body.note,
    ).toBeNull();
    const missing = await h.http.call(
      'PATCH',
      '/api/processes/00000000-0000-4000-8000-000000000000',
      {
        note: 'x',
      },
    );
    expect(missing.status).toBe(404);
  });
});

describe('PUT /api/processes/resume-all', () => {
  it('resumes failed and waiting tasks once and leaves workflows alone', async () => {
    // Tasks stopped at their first step (failed, waiting, api_unavailable), set up directly.
    const stopped = async (status: string) => {
      const id = await seedProcess(h.db.pool, { workflowName: 'noop_task', isTask: true });
      await h.db.pool.query(
        `WITH p AS (UPDATE orchestrator.processes
                       SET status = $2, last_step = 'One',
                           retry_at = CASE WHEN $2 = 'waiting' THEN now() + interval '1 hour' END
                     WHERE id = $1 RETURNING id)
         INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
         SELECT id, 0, 'One', CASE WHEN $2 = 'waiting' THEN 'waiting' ELSE 'failed' END, '{}', now() FROM p`,
        [id, status],
      );
      return id;
    };
    const tasks = [
      await stopped('failed'),
      await stopped('waiting'),
      await stopped('api_unavailable'),
      await stopped('inconsistent_data'),
    ];
    const wf = await h.http.start('flaky', { failTimes: 1 });
    await h.http.waitForStatus(wf, 'failed');
    const r = await h.http.put('/api/processes/resume-all');
    expect(r).toEqual({ status: 200, body: { count: 4 } });
    for (const t of tasks) await h.http.waitForStatus(t, 'completed');
    expect((await h.http.get(`/api/processes/${wf}`)).body.status).toBe('failed');
    expect((await h.http.put('/api/processes/resume-all')).body).toEqual({ count: 0 });
  });

  it('answers 409 already_running while another resume-all holds its lock', async () => {
    const holder = await h.db.pool.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtext('orchestrator.resume-all'))`);
      const r = await h.http.put('/api/processes/resume-all');
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('already_running');
    } finally {
      await holder.query(`SELECT pg_advisory_unlock(hashtext('orchestrator.resume-all'))`);
      holder.release();
    }
    expect((await h.http.put('/api/processes/resume-all')).status).toBe(200);
  });
});

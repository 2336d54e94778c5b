// Worker mode end to end: the API (EXECUTOR=worker) and worker processes spawned for real against
// a real Postgres.
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';
import { spawnNode } from './support/spawn.ts';
import { startWorkerProcess, terminate } from './support/workers.ts';

// The API in worker mode; the workers are the tests' own.
const h = useHarness({ executor: 'worker', workers: 0 });

async function queueCount(queue: string, field: 'queued' | 'active'): Promise<number> {
  const r = await h.http.get('/api/settings/worker-status');
  return r.body.queues.find((q: { name: string }) => q.name === queue)[field];
}

describe('worker CLI', () => {
  it('refuses unknown queue names, listing the valid ones', async () => {
    const w = spawnNode('src/cli/worker.ts', ['--queues', 'workflows,bogus'], {
      DATABASE_URL: h.db.url,
    });
    expect(await w.exited).toBe(1);
    expect(w.output()).toContain('Unknown queue "bogus"');
    expect(w.output()).toMatch(
      /Valid: workflows, tasks, all, new_workflows, resume_workflows, new_tasks, resume_tasks/,
    );
  });
});

describe('routing', () => {
  it('a workflows worker leaves tasks queued and visible until a tasks worker starts', async () => {
    const workflows = await h.startWorker(['--queues', 'workflows', '--concurrency', '2']);
    const task = await h.http.start('noop_task');
    const wf = await h.http.start('noop');
    await h.http.waitForStatus(wf, 'completed', 60_000);
    // The workflow started after the task has completed; the task is still waiting for its queue.
    expect((await h.http.get(`/api/processes/${task}`)).body.status).toBe('created');
    expect(await queueCount('new_tasks', 'queued')).toBe(1);
    const status = (await h.http.get('/api/settings/worker-status')).body;
    expect(status.executor).toBe('worker');
    expect(status.workers).toEqual([
      expect.objectContaining({ queues: ['new_workflows', 'resume_workflows'], concurrency: 2 }),
    ]);

    const tasks = await h.startWorker(['--queues', 'tasks', '--concurrency', '1']);
    const done = await h.http.waitForStatus(task, 'completed', 60_000);
    expect(done.isTask).toBe(true);
    expect(done.steps.map((s: any) => s.status)).toEqual(['success', 'success', 'success']);
    expect(await queueCount('new_tasks', 'queued')).toBe(0);

    expect(await terminate(workflows)).toBe(0);
    expect(await terminate(tasks)).toBe(0);
    await expect
      .poll(async () => (await h.http.get('/api/settings/worker-status')).body.workers, {
        timeout: 60_000,
      })
      .toEqual([]);
  });
});

describe('two workers, as the README starts them', () => {
  const longLease = { LEASE_SECONDS: '600' };
  let workers: Awaited<ReturnType<typeof startWorkerProcess>>[] = [];
  beforeAll(async () => {
    workers = await Promise.all([
      // A long lease: an abort must reach a step through the live events, not a lease heartbeat.
      h.startWorker(['--queues', 'workflows', '--concurrency', '2'], longLease),
      h.startWorker(['--queues', 'tasks', '--concurrency', '2'], longLease),
    ]);
  });
  afterAll(async () => {
    for (const w of workers) expect(await terminate(w)).toBe(0);
  });

  it('reports both workers online with their queues', async () => {
    const status = (await h.http.get('/api/settings/worker-status')).body;
    expect(status.workersOnline).toBe(2);
    expect(status.workers.map((w: { queues: string[] }) => w.queues.length).sort()).toEqual([2, 2]);
    expect(status.queues.map((q: { name: string }) => q.name)).toEqual([
      'new_workflows',
      'resume_workflows',
      'new_tasks',
      'resume_tasks',
    ]);
  });

  it('hello: suspends for input, resumes, completes', async () => {
    const id = await h.http.start('hello', { name: 'Ada' });
    let p = await h.http.waitForStatus(id, 'suspended', 60_000);
    expect(p.currentState).toMatchObject({ greeting: 'Hello, Ada!' });
    expect(p.form).toMatchObject({ properties: { confirmed: { type: 'boolean' } } });
    expect((await h.http.put(`/api/processes/${id}/resume`, { confirmed: true })).status).toBe(204);
    p = await h.http.waitForStatus(id, 'completed', 60_000);
    expect(p.currentState).toEqual({
      name: 'Ada',
      greeting: 'Hello, Ada!',
      confirmed: true,
      finished: true,
    });
    expect(p.steps.map((s: any) => [s.name, s.status])).toEqual([
      ['Greet', 'success'],
      ['Confirm', 'suspend'],
      ['Confirm', 'success'],
      ['Finish', 'success'],
    ]);
  });

  it('flaky: fails, and a resume retries the step on a worker', async () => {
    const id = await h.http.start('flaky', { failTimes: 1 });
    let p = await h.http.waitForStatus(id, 'failed', 60_000);
    expect(p.failedReason).toBe('attempt 1 of 2 fails on purpose');
    expect((await h.http.put(`/api/processes/${id}/resume`)).status).toBe(204);
    p = await h.http.waitForStatus(id, 'completed', 60_000);
    expect(p.currentState).toEqual({ failTimes: 1, succeededOnAttempt: 2 });
    expect(p.steps.map((s: any) => s.status)).toEqual(['failed', 'success']);
  });

  it('slow, noop and noop_task complete', async () => {
    const slow = await h.http.start('slow', { sleepMs: 50 });
    const noop = await h.http.start('noop');
    const task = await h.http.start('noop_task');
    const s = await h.http.waitForStatus(slow, 'completed', 60_000);
    expect(s.currentState.visited).toEqual([1, 2, 3, 4, 5]);
    expect(s.steps).toHaveLength(5);
    expect((await h.http.waitForStatus(noop, 'completed', 60_000)).steps.length).toBeGreaterThan(0);
    expect((await h.http.waitForStatus(task, 'completed', 60_000)).steps).toHaveLength(3);
  });

  it('a job for a process that has ended is completed without running anything', async () => {
    const id = await h.http.start('noop');
    const before = await h.http.waitForStatus(id, 'completed', 60_000);
    const boss = new PgBoss({ connectionString: h.db.url, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    try {
      const jobId = await boss.send('resume_workflows', { processId: id, user: null });
      expect(jobId).toBeTruthy();
      await expect
        .poll(async () => (await boss.findJobs('resume_workflows', { id: jobId! }))[0]?.state, {
          timeout: 60_000,
        })
        .toBe('completed');
    } finally {
      await boss.stop({ graceful: false });
    }
    const after = (await h.http.get(`/api/processes/${id}`)).body;
    expect(after.steps).toEqual(before.steps);
    expect(after.lastModifiedAt).toBe(before.lastModifiedAt);
  });

  it('abort stops a step running on a worker', async () => {
    const id = await h.http.start('slow', { sleepMs: 600_000 });
    await h.http.waitFor(id, (p) => p.status === 'running', 60_000);
    expect((await h.http.put(`/api/processes/${id}/abort`)).status).toBe(204);
    const p = await h.http.waitForStatus(id, 'aborted');
    expect(p.steps.map((x: any) => x.status)).toEqual(['abort']);
    // The worker heard of the abort, ended the step and completed the job.
    await expect.poll(() => queueCount('new_workflows', 'active'), { timeout: 60_000 }).toBe(0);
  });

  it('a resume racing from two clients: one 204, one 409 not_resumable, and the process runs once', async () => {
    const hellos = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => h.http.start('hello', { name: `R${n}` })),
    );
    for (const hello of hellos) {
      await h.http.waitForStatus(hello, 'suspended', 60_000);
      const a = await Promise.all([
        h.http.put(`/api/processes/${hello}/resume`, { confirmed: true }),
        h.http.put(`/api/processes/${hello}/resume`, { confirmed: false }),
        h.http.put(`/api/processes/${hello}/resume`, { confirmed: true }),
      ]);
      expect(a.map((r) => r.status).sort()).toEqual([204, 409, 409]);
      for (const r of a.filter((x) => x.status === 409))
        expect(r.body.error.code).toBe('not_resumable');
      const done = await h.http.waitForStatus(hello, 'completed', 60_000);
      expect(done.steps.map((s: any) => s.name)).toEqual(['Greet', 'Confirm', 'Confirm', 'Finish']);
    }

    const flaky = await h.http.start('flaky', { failTimes: 1 });
    await h.http.waitForStatus(flaky, 'failed', 60_000);
    const b = await Promise.all([
      h.http.put(`/api/processes/${flaky}/resume`),
      h.http.put(`/api/processes/${flaky}/resume`),
    ]);
    expect(b.map((r) => r.status).sort()).toEqual([204, 409]);
    expect(b.find((r) => r.status === 409)?.body.error.code).toBe('not_resumable');
    const f = await h.http.waitForStatus(flaky, 'completed', 60_000);
    expect(f.steps.map((s: any) => s.status)).toEqual(['failed', 'success']);
    const { rows } = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE data->>'processId' = $1`,
      [flaky],
    );
    expect(rows[0].n).toBe(2);
  });
});

describe('atomic hand-off', () => {
  it('a job that cannot be sent leaves no process behind', async () => {
    const boss = new PgBoss({ connectionString: h.db.url, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    try {
      await boss.deleteQueue('new_tasks');
      const before = await h.db.pool.query(`SELECT count(*)::int AS n FROM orchestrator.processes`);
      const r = await h.http.post('/api/processes/noop_task', {});
      expect(r.status).toBe(500);
      const after = await h.db.pool.query(`SELECT count(*)::int AS n FROM orchestrator.processes`);
      expect(after.rows[0].n).toBe(before.rows[0].n);
    } finally {
      await boss.createQueue('new_tasks', { notify: true });
      await boss.stop({ graceful: false });
    }
  });
});

describe('npm run queues', () => {
  it('prints jobs per queue, processes per workflow, stuck processes, schedules, locks and retries', async () => {
    const text = spawnNode('src/cli/queues.ts', [], { DATABASE_URL: h.db.url });
    expect(await text.exited).toBe(0);
    expect(text.output()).toContain('Jobs per queue and state (orchestrator.queue_overview)');
    expect(text.output()).toMatch(/new_workflows\s+completed\s+\d+/);
    expect(text.output()).toMatch(/hello\s+false\s+completed\s+6/);
    expect(text.output()).toMatch(/Stuck processes \(orchestrator.stuck_processes\)\n {2}\(none\)/);

    const json = spawnNode('src/cli/queues.ts', ['--json'], { DATABASE_URL: h.db.url });
    expect(await json.exited).toBe(0);
    const parsed = JSON.parse(json.output());
    expect(parsed.stuck).toEqual([]);
    expect(parsed.processes).toContainEqual(
      expect.objectContaining({ workflow: 'noop_task', isTask: true, status: 'completed' }),
    );
    // The built-in tasks' schedules, each with its next run.
    expect(text.output()).toMatch(
      /Schedules \(orchestrator.schedule_overview\)\n.*\n.*\n {2}task_clean_up_tasks/,
    );
    expect(parsed.schedules.map((s: { name: string }) => s.name)).toEqual([
      'task_clean_up_tasks',
      'task_resume_workflows',
      'task_validate_workflows',
    ]);
    for (const s of parsed.schedules)
      expect(new Date(s.nextRun).getTime()).toBeGreaterThan(Date.now());
    expect(text.output()).toContain('Resource locks held (orchestrator.resource_lock_overview)');
    expect(text.output()).toContain('Waiting retries (orchestrator.waiting_retries)');
    expect(parsed.locks).toEqual([]);
    expect(parsed.retries).toEqual([]);
  });
});

describe('per-target queues', () => {
  it('a target listed in TARGET_QUEUES has its own queue, consumed by name', async () => {
    const env = { TARGET_QUEUES: 'system' };
    const api = await h.startWorkerModeApi(env);
    // Without the variable the name is unknown.
    const refused = spawnNode('src/cli/worker.ts', ['--queues', 'system'], {
      DATABASE_URL: h.db.url,
    });
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain('Unknown queue "system"');

    const id = await api.http.start('noop_task');
    const worker = await h.startWorker(['--queues', 'system', '--concurrency', '1'], env);
    await api.http.waitForStatus(id, 'completed', 60_000);
    const { rows } = await h.db.pool.query(
      `SELECT name FROM pgboss.job WHERE data->>'processId' = $1`,
      [id],
    );
    expect(rows).toEqual([{ name: 'system' }]);
    const status = (await api.http.get('/api/settings/worker-status')).body;
    expect(status.queues.map((q: { name: string }) => q.name)).toContain('system');
    expect(await terminate(worker)).toBe(0);
    expect(await terminate(api.api)).toBe(0);
  });
});

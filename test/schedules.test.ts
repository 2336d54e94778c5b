// Schedules on pg-boss cron, against a real Postgres with two API instances on one database.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../src/db/pool.ts';
import type { Orchestrator } from '../src/server.ts';
import { client } from './support/api.ts';
import { useHarness } from './support/harness.ts';

// Two instances start together (the harness gives the database and closes both); the tests
// call the first.
const h = useHarness({ invariants: { registry: () => a.engine.registry } });
let a: Orchestrator;
let http: ReturnType<typeof client>;

beforeAll(async () => {
  [a] = await Promise.all([h.startApi(), h.startApi()]);
  http = client(a.url);
});

const scheduleCount = async () =>
  (await h.db.pool.query(`SELECT count(*)::int AS n FROM pgboss.schedule`)).rows[0].n;

describe('schedules', () => {
  it('the built-in tasks are scheduled once, with their next run, by two instances starting together', async () => {
    const r = await http.get('/api/schedules');
    expect(r.status).toBe(200);
    expect(r.body.map((s: { name: string }) => s.name)).toEqual([
      'task_clean_up_tasks',
      'task_resume_workflows',
      'task_validate_workflows',
    ]);
    for (const s of r.body) {
      expect(s).toMatchObject({ workflow: s.name, timezone: 'UTC', overlap: false });
      expect(new Date(s.nextRunAt).getTime()).toBeGreaterThan(Date.now());
    }
    const { rows } = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM orchestrator.schedule_defaults`,
    );
    expect(rows[0].n).toBe(3);
  });

  it('refuses bad schedules with 400 and a stable code, writing nothing', async () => {
    const before = await scheduleCount();
    const cases: [unknown, string][] = [
      [{ name: 'x', workflow: 'noop_task', cron: 'every minute' }, 'invalid_schedule'],
      [
        { name: 'x', workflow: 'noop_task', cron: '* * * * *', timezone: 'Mars/Olympus' },
        'invalid_schedule',
      ],
      [{ name: 'x', workflow: 'no_such', cron: '* * * * *' }, 'workflow_not_found'],
      [
        { name: 'x', workflow: 'flaky', cron: '* * * * *', input: { failTimes: -1 } },
        'validation_error',
      ],
      [
        { name: 'x', workflow: 'provision_port', cron: '* * * * *', input: { device: 'leaf-1' } },
        'validation_error',
      ],
      [{ name: 'Bad Name', workflow: 'noop_task', cron: '* * * * *' }, 'validation_error'],
      [{ name: 'x', workflow: 'noop_task', cron: '* * * * *', extra: 1 }, 'validation_error'],
      [[], 'validation_error'],
    ];
    for (const [body, code] of cases) {
      const r = await http.post('/api/schedules', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code, JSON.stringify(body)).toBe(code);
    }
    expect(await scheduleCount()).toBe(before);
    const missing = await http.call('DELETE', '/api/schedules/no-such-schedule');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('schedule_not_found');
  });

  it('creates, changes and deletes a schedule', async () => {
    const created = await http.post('/api/schedules', {
      name: 'nightly-flaky',
      workflow: 'flaky',
      cron: '0 3 * * *',
      timezone: 'Europe/Amsterdam',
      input: { failTimes: 0 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'nightly-flaky',
      workflow: 'flaky',
      cron: '0 3 * * *',
      timezone: 'Europe/Amsterdam',
      input: { failTimes: 0 },
      overlap: true,
    });
    const changed = await http.post('/api/schedules', {
      name: 'nightly-flaky',
      workflow: 'flaky',
      cron: '30 4 * * 1',
      input: { failTimes: 1 },
      overlap: false,
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ cron: '30 4 * * 1', timezone: 'UTC', overlap: false });
    expect(new Date(changed.body.nextRunAt).getUTCDay()).toBe(1);
    expect((await http.call('DELETE', '/api/schedules/nightly-flaky')).status).toBe(204);
    expect(
      (await http.get('/api/schedules')).body.some(
        (s: { name: string }) => s.name === 'nightly-flaky',
      ),
    ).toBe(false);
  });

  it('a deleted default is not put back when an instance starts again', async () => {
    expect((await http.call('DELETE', '/api/schedules/task_validate_workflows')).status).toBe(204);
    const c = await h.startApi();
    try {
      const names = (await client(c.url).get('/api/schedules')).body.map(
        (s: { name: string }) => s.name,
      );
      expect(names).not.toContain('task_validate_workflows');
      expect(names).toContain('task_resume_workflows');
    } finally {
      await c.close();
    }
  });

  it('a tick starts exactly one process across two instances', async () => {
    const r = await http.post('/api/schedules', {
      name: 'every-minute',
      workflow: 'noop_task',
      cron: '* * * * *',
    });
    expect(r.status).toBe(201);
    const started = async () =>
      (
        await h.db.pool.query<{ id: string; status: string; createdBy: string; minute: string }>(
          `SELECT id, status, created_by AS "createdBy", date_trunc('minute', started_at)::text AS minute
             FROM orchestrator.processes WHERE schedule_name = 'every-minute' ORDER BY started_at`,
        )
      ).rows;
    const deadline = Date.now() + 100_000;
    while ((await started()).length === 0 && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 500));
    const first = await started();
    expect(first.length).toBe(1);
    // Both instances run the cron pass and look for ticks: still one process for that minute.
    await new Promise((res) => setTimeout(res, 12_000));
    const later = await started();
    const perMinute = new Map<string, number>();
    for (const p of later) perMinute.set(p.minute, (perMinute.get(p.minute) ?? 0) + 1);
    expect([...perMinute.values()].every((n) => n === 1)).toBe(true);
    expect(later[0]).toMatchObject({ createdBy: 'schedule:every-minute' });
    await http.waitForStatus(later[0]!.id, 'completed');
    expect((await http.call('DELETE', '/api/schedules/every-minute')).status).toBe(204);
  }, 130_000);

  it('a tick is started once whatever retries it, and skipped while overlap is off and the last run goes on', async () => {
    const tick = (schedule: { overlap: boolean }, id = randomUUID()) =>
      withTransaction(h.db.pool, (tx) =>
        a.engine.startScheduled({
          id,
          tx,
          schedule: {
            name: 'manual',
            workflow: 'slow',
            input: { sleepMs: 60_000 },
            overlap: schedule.overlap,
          },
        }),
      ).then((after) => after());
    const id = randomUUID();
    await tick({ overlap: false }, id);
    await tick({ overlap: false }, id); // the same tick again: nothing more
    await http.waitForStatus(id, 'running');
    await tick({ overlap: false }); // a new tick while the first runs: skipped
    const count = async () =>
      (
        await h.db.pool.query(
          `SELECT count(*)::int AS n FROM orchestrator.processes WHERE schedule_name = 'manual'`,
        )
      ).rows[0].n;
    expect(await count()).toBe(1);
    await tick({ overlap: true }); // overlapping allowed: a second one
    expect(await count()).toBe(2);
    const { rows } = await h.db.pool.query(
      `SELECT id FROM orchestrator.processes WHERE schedule_name = 'manual'`,
    );
    for (const r of rows) await http.put(`/api/processes/${r.id}/abort`);
    await tick({ overlap: false }); // the previous ones ended (aborted): runs again
    expect(await count()).toBe(3);
    const [last] = (
      await h.db.pool.query(
        `SELECT id FROM orchestrator.processes WHERE schedule_name = 'manual' ORDER BY started_at DESC LIMIT 1`,
      )
    ).rows;
    await http.put(`/api/processes/${last.id}/abort`);
  });
});

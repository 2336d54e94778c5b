// Child processes (subProcesses: fan-out and fan-in), end to end against a real Postgres.
import { expect, it } from 'vitest';
import { client } from './support/api.ts';
import type { TestDatabase } from './support/database.ts';
import { describeBothModes, useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

type Http = ReturnType<typeof client>;

const childRows = async (db: Pick<TestDatabase, 'pool'>, parent: string) =>
  (
    await db.pool.query<{ id: string; workflow: string; status: string; successes: number }>(
      `SELECT p.id, p.workflow_name AS workflow, p.status,
              (SELECT count(*)::int FROM orchestrator.process_steps s
                WHERE s.process_id = p.id AND s.status = 'success') AS successes
         FROM orchestrator.processes p WHERE p.parent_id = $1 ORDER BY p.id`,
      [parent],
    )
  ).rows;

function fanOutSuite(ctx: () => { http: Http; db: Pick<TestDatabase, 'pool'> }) {
  it('nightly_validation fans out one child per device and reports the failures', async () => {
    const { http, db } = ctx();
    const id = await http.start('nightly_validation', { delayMs: 300 });
    const waiting = await http.waitFor(id, (p) => p.status === 'waiting');
    expect(waiting.retryAt).toBeNull();
    expect(waiting.steps.at(-1)).toMatchObject({ name: 'Validate devices', status: 'waiting' });
    // It goes on by itself when its children have ended: a resume is refused.
    const resume = await http.put(`/api/processes/${id}/resume`);
    expect(resume.status).toBe(409);
    expect(resume.body.error.code).toBe('waiting_for_children');
    const done = await http.waitForStatus(id, 'completed', 30_000);
    expect(done.currentState.checked).toBe(3);
    expect(done.currentState.failures.map((f: { device: string }) => f.device).sort()).toEqual([
      'leaf-2',
      'spine-1',
    ]);
    const validations = done.currentState.validations as {
      id: string;
      status: string;
      workflow: string;
    }[];
    expect(validations.map((v) => v.status)).toEqual(['completed', 'completed', 'completed']);
    const children = await childRows(db, id);
    expect(children.map((c) => c.id).sort()).toEqual(validations.map((v) => v.id).sort());
    for (const c of children)
      expect(c).toMatchObject({ workflow: 'validate_device', status: 'completed', successes: 1 });
    expect(
      done.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`),
    ).toEqual(['Validate devices:waiting', 'Validate devices:success', 'Report:success']);
  });

  it('aborting the parent aborts its children', async () => {
    const { http, db } = ctx();
    const id = await http.start('nightly_validation', { delayMs: 60_000 });
    await http.waitFor(id, (p) => p.status === 'waiting');
    expect((await http.put(`/api/processes/${id}/abort`)).status).toBe(204);
    const deadline = Date.now() + 10_000;
    let children = await childRows(db, id);
    while (children.some((c) => c.status !== 'aborted') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      children = await childRows(db, id);
    }
    expect(children.map((c) => c.status)).toEqual(['aborted', 'aborted', 'aborted']);
    expect((await http.get(`/api/processes/${id}`)).body.status).toBe('aborted');
  });
}

describeBothModes('child processes', (executor) => {
  const workflows = { WORKFLOWS_DIR: fixtures('workflows-children') };
  const h = useHarness({
    executor,
    env: executor === 'worker' ? { ...workflows, LEASE_SECONDS: '2' } : workflows,
    workerArgs: ['--concurrency', '4'],
  });

  fanOutSuite(() => ({ http: h.http, db: h.db }));

  if (executor === 'threadpool') {
    it('a failed child keeps the parent waiting until it is retried to completion', async () => {
      const id = await h.http.start('fanout_flaky', { failTimes: [0, 1] });
      await h.http.waitFor(id, (p) => p.status === 'waiting');
      const deadline = Date.now() + 10_000;
      let children = await childRows(h.db, id);
      while (!children.some((c) => c.status === 'failed') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        children = await childRows(h.db, id);
      }
      const failed = children.find((c) => c.status === 'failed')!;
      expect(failed).toBeDefined();
      await new Promise((r) => setTimeout(r, 300));
      expect((await h.http.get(`/api/processes/${id}`)).body.status).toBe('waiting');
      expect((await h.http.put(`/api/processes/${failed.id}/resume`)).status).toBe(204);
      const done = await h.http.waitForStatus(id, 'completed');
      expect(done.currentState.children.map((c: { status: string }) => c.status)).toEqual([
        'completed',
        'completed',
      ]);
    });

    it('an aborted child fails the parent with the reason', async () => {
      const id = await h.http.start('fanout_flaky', { failTimes: [0, 1] });
      await h.http.waitFor(id, (p) => p.status === 'waiting');
      let failed: { id: string } | undefined;
      for (let i = 0; i < 200 && !failed; i++) {
        failed = (await childRows(h.db, id)).find((c) => c.status === 'failed');
        if (!failed) await new Promise((r) => setTimeout(r, 50));
      }
      expect((await h.http.put(`/api/processes/${failed!.id}/abort`)).status).toBe(204);
      const parent = await h.http.waitForStatus(id, 'failed');
      expect(parent.failedReason).toBe(`child ${failed!.id} (flaky) was aborted`);
    });

    it('a parent failed for an aborted child, resumed, starts its children anew and counts only those', async () => {
      const failedChild = async (id: string, not: string[] = []) => {
        for (let i = 0; i < 200; i++) {
          const f = (await childRows(h.db, id)).find(
            (c) => c.status === 'failed' && !not.includes(c.id),
          );
          if (f) return f.id;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error('no child failed');
      };
      const id = await h.http.start('fanout_flaky', { failTimes: [0, 1] });
      const aborted = await failedChild(id);
      const first = (await childRows(h.db, id)).map((c) => c.id);
      expect((await h.http.put(`/api/processes/${aborted}/abort`)).status).toBe(204);
      await h.http.waitForStatus(id, 'failed');
      expect((await h.http.put(`/api/processes/${id}/resume`)).status).toBe(204);
      const again = await failedChild(id, first);
      expect((await h.http.put(`/api/processes/${again}/resume`)).status).toBe(204);
      const done = await h.http.waitForStatus(id, 'completed');
      const second = (await childRows(h.db, id)).filter((c) => !first.includes(c.id));
      expect(second.map((c) => c.status)).toEqual(['completed', 'completed']);
      expect(done.currentState.children.map((c: { id: string }) => c.id).sort()).toEqual(
        second.map((c) => c.id).sort(),
      );
    });
  } else {
    it('a worker killed mid-way: every child still counted once', async () => {
      const env = { WORKFLOWS_DIR: fixtures('workflows-children'), LEASE_SECONDS: '2' };
      const doomed = await h.startWorker(['--concurrency', '4'], env);
      const id = await h.http.start('nightly_validation', { delayMs: 1_500 });
      await h.http.waitFor(id, (p) => p.status === 'waiting');
      await new Promise((r) => setTimeout(r, 500));
      doomed.child.kill('SIGKILL');
      const done = await h.http.waitForStatus(id, 'completed', 60_000);
      const validations = done.currentState.validations as { id: string }[];
      expect(new Set(validations.map((v) => v.id)).size).toBe(3);
      const children = await childRows(h.db, id);
      expect(children).toHaveLength(3);
      for (const c of children) expect(c).toMatchObject({ status: 'completed', successes: 1 });
      expect(done.currentState.checked).toBe(3);
    });
  }
});

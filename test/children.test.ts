// Child processes (subProcesses: fan-out and fan-in), end to end against a real Postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants } from '../src/db/testkit/invariants.ts';
import { loadRegistry } from '../src/engine/registry.ts';
import type { Orchestrator } from '../src/server.ts';
import { client, startApi } from './support/api.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { fixtures, root } from './support/paths.ts';
import { killAll } from './support/spawn.ts';
import { startWorkerModeApi, startWorkerProcess } from './support/workers.ts';

type Http = ReturnType<typeof client>;

const childRows = async (db: TestDatabase, parent: string) =>
  (
    await db.pool.query<{ id: string; workflow: string; status: string; successes: number }>(
      `SELECT p.id, p.workflow_name AS workflow, p.status,
              (SELECT count(*)::int FROM orchestrator.process_steps s
                WHERE s.process_id = p.id AND s.status = 'success') AS successes
         FROM orchestrator.processes p WHERE p.parent_id = $1 ORDER BY p.id`,
      [parent],
    )
  ).rows;

function fanOutSuite(ctx: () => { http: Http; db: TestDatabase }) {
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

describe('threadpool', () => {
  let db: TestDatabase;
  let api: Orchestrator;
  let http: Http;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db.url, { WORKFLOWS_DIR: fixtures('workflows-children') });
    http = client(api.url);
  });
  afterAll(async () => {
    await api?.close();
    if (db) expect(await checkInvariants(db.pool, { registry: api.engine.registry })).toEqual([]);
    await db?.drop();
  });

  fanOutSuite(() => ({ http, db }));

  it('a failed child keeps the parent waiting until it is retried to completion', async () => {
    const id = await http.start('fanout_flaky', { failTimes: [0, 1] });
    await http.waitFor(id, (p) => p.status === 'waiting');
    const deadline = Date.now() + 10_000;
    let children = await childRows(db, id);
    while (!children.some((c) => c.status === 'failed') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      children = await childRows(db, id);
    }
    const failed = children.find((c) => c.status === 'failed')!;
    expect(failed).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    expect((await http.get(`/api/processes/${id}`)).body.status).toBe('waiting');
    expect((await http.put(`/api/processes/${failed.id}/resume`)).status).toBe(204);
    const done = await http.waitForStatus(id, 'completed');
    expect(done.currentState.children.map((c: { status: string }) => c.status)).toEqual([
      'completed',
      'completed',
    ]);
  });

  it('an aborted child fails the parent with the reason', async () => {
    const id = await http.start('fanout_flaky', { failTimes: [0, 1] });
    await http.waitFor(id, (p) => p.status === 'waiting');
    let failed: { id: string } | undefined;
    for (let i = 0; i < 200 && !failed; i++) {
      failed = (await childRows(db, id)).find((c) => c.status === 'failed');
      if (!failed) await new Promise((r) => setTimeout(r, 50));
    }
    expect((await http.put(`/api/processes/${failed!.id}/abort`)).status).toBe(204);
    const parent = await http.waitForStatus(id, 'failed');
    expect(parent.failedReason).toBe(`child ${failed!.id} (flaky) was aborted`);
  });

  it('a parent failed for an aborted child, resumed, starts its children anew and counts only those', async () => {
    const failedChild = async (id: string, not: string[] = []) => {
      for (let i = 0; i < 200; i++) {
        const f = (await childRows(db, id)).find(
          (c) => c.status === 'failed' && !not.includes(c.id),
        );
        if (f) return f.id;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('no child failed');
    };
    const id = await http.start('fanout_flaky', { failTimes: [0, 1] });
    const aborted = await failedChild(id);
    const first = (await childRows(db, id)).map((c) => c.id);
    expect((await http.put(`/api/processes/${aborted}/abort`)).status).toBe(204);
    await http.waitForStatus(id, 'failed');
    expect((await http.put(`/api/processes/${id}/resume`)).status).toBe(204);
    const again = await failedChild(id, first);
    expect((await http.put(`/api/processes/${again}/resume`)).status).toBe(204);
    const done = await http.waitForStatus(id, 'completed');
    const second = (await childRows(db, id)).filter((c) => !first.includes(c.id));
    expect(second.map((c) => c.status)).toEqual(['completed', 'completed']);
    expect(done.currentState.children.map((c: { id: string }) => c.id).sort()).toEqual(
      second.map((c) => c.id).sort(),
    );
  });
});

describe('worker mode', () => {
  let db: TestDatabase;
  let http: Http;
  beforeAll(async () => {
    db = await createTestDatabase();
    const env = { WORKFLOWS_DIR: fixtures('workflows-children'), LEASE_SECONDS: '2' };
    ({ http } = await startWorkerModeApi(db.url, env));
    await startWorkerProcess(db.url, ['--concurrency', '4'], env);
  });
  afterAll(async () => {
    await killAll();
    const registry = await loadRegistry(fixtures('workflows-children'));
    if (db) expect(await checkInvariants(db.pool, { registry, checkJobs: true })).toEqual([]);
    await db?.drop();
    void root;
  });

  fanOutSuite(() => ({ http, db }));

  it('a worker killed mid-way: every child still counted once', async () => {
    const env = { WORKFLOWS_DIR: fixtures('workflows-children'), LEASE_SECONDS: '2' };
    const doomed = await startWorkerProcess(db.url, ['--concurrency', '4'], env);
    const id = await http.start('nightly_validation', { delayMs: 1_500 });
    await http.waitFor(id, (p) => p.status === 'waiting');
    await new Promise((r) => setTimeout(r, 500));
    doomed.child.kill('SIGKILL');
    const done = await http.waitForStatus(id, 'completed', 60_000);
    const validations = done.currentState.validations as { id: string }[];
    expect(new Set(validations.map((v) => v.id)).size).toBe(3);
    const children = await childRows(db, id);
    expect(children).toHaveLength(3);
    for (const c of children) expect(c).toMatchObject({ status: 'completed', successes: 1 });
    expect(done.currentState.checked).toBe(3);
  });
});

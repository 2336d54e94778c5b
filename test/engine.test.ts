import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/config/logger.ts';
import { commitStep, type StepCommit } from '../src/db/step-commits.ts';
import { loadRegistry } from '../src/engine/registry.ts';
import { publishNowhere } from '../src/db/events.ts';
import { createRunner } from '../src/engine/runner.ts';
import { createStepPool, type StepPool } from '../src/engine/step-pool.ts';
import { client } from './support/api.ts';
import { seedProcess, claimProcess, heartbeat } from './support/database.ts';
import { useHarness } from './support/harness.ts';
import { fixtures, root } from './support/paths.ts';

// Processes set up by hand; the runners and APIs are the tests' own.
const h = useHarness();
let steps: StepPool;

beforeAll(() => {
  steps = createStepPool({ workflowsDir: `${root}/workflows`, maxThreads: 1 });
});
afterAll(async () => {
  await steps?.close();
});

async function newProcess(workflowName: string, input: Record<string, unknown> = {}) {
  return seedProcess(h.db.pool, { workflowName, createdBy: 'test', input });
}

async function stepRows(id: string) {
  const { rows } = await h.db.pool.query(
    `SELECT step_index AS "index", name, status FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
    [id],
  );
  return rows as { index: number; name: string; status: string }[];
}

describe('fencing token', () => {
  it('a runner whose lease was taken over can neither commit nor heartbeat', async () => {
    const id = await newProcess('noop');
    const a = await claimProcess(h.db.pool, id, 'runner-a', 30);
    expect(a).toBeDefined();
    // While A's lease is valid nobody else can claim.
    expect(await claimProcess(h.db.pool, id, 'runner-b', 30)).toBeUndefined();
    // A stalls past its lease; B takes over.
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET lease_expires_at = now() - interval '1 second' WHERE id = $1`,
      [id],
    );
    const b = await claimProcess(h.db.pool, id, 'runner-b', 30);
    expect(b?.leaseToken).toBeDefined();
    expect(b?.leaseToken).not.toBe(a?.leaseToken);

    const commit = (token: string): StepCommit => ({
      id,
      leaseToken: token,
      index: 0,
      name: 'One',
      stepStatus: 'success',
      state: {},
      startedAt: new Date(),
      createdBy: 'test',
      processStatus: 'running',
      nextIndex: 1,
      nextAttempt: 1,
      leaseSeconds: 30,
    });
    expect((await commitStep(h.db.pool, commit(a!.leaseToken))).held).toBe(false);
    expect(await heartbeat(h.db.pool, id, a!.leaseToken, 30)).toBe(false);
    expect(await stepRows(id)).toEqual([]);
    expect((await commitStep(h.db.pool, commit(b!.leaseToken))).held).toBe(true);
    expect(await stepRows(id)).toEqual([{ index: 0, name: 'One', status: 'success' }]);
    // Even with a valid lease, a step index is cleared at most once (unique index).
    await expect(commitStep(h.db.pool, { ...commit(b!.leaseToken) })).rejects.toThrow(
      /process_steps_cleared_once/,
    );
  });

  it('a running runner notices the takeover at its next heartbeat, aborts its step and writes nothing', async () => {
    const registry = await loadRegistry(`${root}/workflows`);
    const runner = createRunner({
      pool: h.db.pool,
      registry,
      steps,
      leaseSeconds: 1,
      logger: silentLogger,
      publish: publishNowhere,
    });
    const id = await newProcess('slow', { sleepMs: 60_000 });
    const claim = await claimProcess(h.db.pool, id, 'runner-a', 1);
    const running = runner.runClaimed(claim!);
    await expect.poll(() => runner.active(), { timeout: 15_000 }).toEqual([id]);
    // Another runner took the process over (as after an expired lease): a new token.
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET lease_token = gen_random_uuid(), lease_owner = 'runner-b' WHERE id = $1`,
      [id],
    );
    expect(await running).toBe('lease_lost');
    expect(await stepRows(id)).toEqual([]);
    const { rows } = await h.db.pool.query(
      `SELECT status, lease_owner FROM orchestrator.processes WHERE id = $1`,
      [id],
    );
    expect(rows[0]).toEqual({ status: 'running', lease_owner: 'runner-b' });
  });
});

describe('restart pick-up', () => {
  it('continues processes left created, resumed, or running with an expired lease; leaves live leases alone', async () => {
    const created = await newProcess('noop');
    const resumed = await newProcess('noop');
    const expired = await newProcess('noop');
    const live = await newProcess('noop');
    await h.db.pool.query(`UPDATE orchestrator.processes SET status = 'resumed' WHERE id = $1`, [
      resumed,
    ]);
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET status = 'running', lease_token = gen_random_uuid(), lease_owner = 'dead',
              lease_expires_at = now() - interval '1 second' WHERE id = $1`,
      [expired],
    );
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET status = 'running', lease_token = gen_random_uuid(), lease_owner = 'alive',
              lease_expires_at = now() + interval '1 hour' WHERE id = $1`,
      [live],
    );
    const api = await h.startApi();
    try {
      const http = client(api.url);
      for (const id of [created, resumed, expired]) {
        const p = await http.waitForStatus(id, 'completed');
        expect(p.steps.map((s: any) => s.name)).toEqual(['One', 'Two', 'Three']);
      }
      expect((await http.get(`/api/processes/${live}`)).body).toMatchObject({
        status: 'running',
        leaseOwner: 'alive',
      });
    } finally {
      await api.close();
    }
  });
});

describe('thread pool', () => {
  it('keeps the API responsive while a step burns CPU', async () => {
    const api = await h.startApi({ WORKFLOWS_DIR: fixtures('workflows'), STEP_THREADS: '1' });
    try {
      const http = client(api.url);
      const id = await http.start('burn', { ms: 3_000 });
      await http.waitForStatus(id, 'running');
      // Several health checks answer while the step still holds its thread.
      for (let i = 0; i < 5; i++) expect((await http.get('/api/health')).status).toBe(200);
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('running');
      const done = await http.waitForStatus(id, 'completed');
      expect(done.currentState.spins).toBeGreaterThan(0);
    } finally {
      await api.close();
    }
  });
});

describe('changed workflows', () => {
  it('refuses to resume at a step whose name changed, and a runner fails such a process', async () => {
    const v1 = await h.startApi({ WORKFLOWS_DIR: fixtures('workflows') });
    const http1 = client(v1.url);
    const suspended = await http1.start('changing');
    await http1.waitForStatus(suspended, 'suspended');
    // A second process left `resumed` past the input step, positioned by v1's step names.
    const moving = await http1.start('changing');
    await http1.waitForStatus(moving, 'suspended');
    expect((await http1.put(`/api/processes/${moving}/resume`, { ok: true })).status).toBe(204);
    await http1.waitForStatus(moving, 'completed');
    await v1.close();

    const v2 = await h.startApi({
      WORKFLOWS_DIR: fixtures('workflows-v2'),
      LEASE_SECONDS: '2',
    });
    try {
      const http2 = client(v2.url);
      const r = await http2.put(`/api/processes/${suspended}/resume`, { ok: true });
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('workflow_changed');
      expect(r.body.error.message).toContain('Approve');
      expect((await http2.get(`/api/processes/${suspended}`)).body.status).toBe('suspended');

      // A process whose last committed step no longer matches is failed with a clear reason.
      const stale = await newProcess('changing');
      await h.db.pool.query(
        `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
         VALUES ($1, 1, 'Approve', 'success', '{"ok":true}', now())`,
        [stale],
      );
      await h.db.pool.query(
        `UPDATE orchestrator.processes SET status = 'resumed', step_index = 2 WHERE id = $1`,
        [stale],
      );
      // Resumed before the new definition was deployed: the sweeper hands it to a runner.
      const failed = await http2.waitFor(stale, (p) => p.status === 'failed' && !!p.failedReason);
      expect(failed.failedReason).toMatch(/changed: step 1 was "Approve" and is now "Review"/);
    } finally {
      await v2.close();
    }
  });
});

describe('workflow registry', () => {
  it('fails on a duplicate name, naming both files', async () => {
    await expect(loadRegistry(fixtures('workflows-duplicate'))).rejects.toThrow(
      /Duplicate workflow name "burn" in .*workflows-duplicate\/b\.ts and .*workflows-duplicate\/a\.ts/,
    );
  });

  it('fails on an invalid definition, naming the file', async () => {
    await expect(loadRegistry(fixtures('workflows-invalid'))).rejects.toThrow(
      /workflows-invalid\/broken\.ts: invalid workflow "Not Valid"/,
    );
  });
});

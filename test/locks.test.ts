// Start predicates and per-resource locks, against a real Postgres.
import { beforeAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/engine/registry.ts';
import type { Orchestrator } from '../src/server.ts';
import { client } from './support/api.ts';
import { useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

const h = useHarness({
  executor: 'threadpool',
  env: { LEASE_SECONDS: '2' },
  invariants: {
    registry: () =>
      createRegistry([...h.api.engine.registry.list(), ...locks.engine.registry.list()]),
  },
});
let locks: Orchestrator;
let fx: ReturnType<typeof client>;

beforeAll(async () => {
  // The fixtures' workflows in an instance of their own on the same database.
  locks = await h.startApi({
    WORKFLOWS_DIR: fixtures('workflows-locks'),
    LEASE_SECONDS: '2',
  });
  fx = client(locks.url);
});

const counts = async () =>
  (
    await h.db.pool.query(
      `SELECT (SELECT count(*)::int FROM orchestrator.processes) AS p,
              (SELECT count(*)::int FROM orchestrator.input_states) AS i,
              (SELECT count(*)::int FROM orchestrator.resource_locks) AS l`,
    )
  ).rows[0];

describe('lockKeys', () => {
  it('a second provision_port for a device in use is refused with 409 naming the holder', async () => {
    const first = await h.http.start('provision_port', [
      { device: 'leaf-1' },
      { port: 'Ethernet1' },
    ]);
    await h.http.waitForStatus(first, 'suspended');
    const before = await counts();
    const second = await h.http.post('/api/processes/provision_port', [
      { device: 'leaf-1' },
      { port: 'Ethernet2' },
    ]);
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('resource_locked');
    expect(second.body.error.message).toContain(first);
    expect(second.body.error.details.held).toEqual([{ key: 'device:leaf-1', holder: first }]);
    expect(await counts()).toEqual(before);
    // Another device is free.
    const other = await h.http.start('provision_port', [
      { device: 'leaf-2' },
      { port: 'Ethernet1' },
    ]);
    expect((await h.http.get(`/api/processes/${first}`)).body.locks).toEqual({
      held: ['device:leaf-1'],
      waitingFor: [],
    });
    // Completed: the key is free again.
    expect((await h.http.put(`/api/processes/${first}/resume`, { confirmed: true })).status).toBe(
      204,
    );
    await h.http.waitForStatus(first, 'completed');
    const third = await h.http.start('provision_port', [
      { device: 'leaf-1' },
      { port: 'Ethernet3' },
    ]);
    await h.http.waitForStatus(third, 'suspended');
    for (const id of [other, third]) await h.http.put(`/api/processes/${id}/abort`);
    expect((await counts()).l).toBe(0);
  });

  it('of many starts for one key at once exactly one wins', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        h.http.post('/api/processes/provision_port', [
          { device: 'spine-1' },
          { port: i % 2 ? 'Ethernet49/1' : 'Ethernet50/1' },
        ]),
      ),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(11);
    const { rows } = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM orchestrator.processes
        WHERE workflow_name = 'provision_port' AND 'device:spine-1' = ANY(lock_keys)`,
    );
    expect(rows[0].n).toBe(1);
    const winner = answers.find((r) => r.status === 201)!.body.id as string;
    await h.http.put(`/api/processes/${winner}/abort`);
  });

  it('a failed holder keeps its key until it ends', async () => {
    const id = await fx.start('failing_lock', { key: 'f' });
    await fx.waitForStatus(id, 'failed');
    expect((await fx.post('/api/processes/failing_lock', { key: 'f' })).status).toBe(409);
    expect((await fx.put(`/api/processes/${id}/resume`)).status).toBe(204);
    await fx.waitForStatus(id, 'completed');
    const next = await fx.start('failing_lock', { key: 'f' });
    await fx.waitForStatus(next, 'failed');
    await fx.put(`/api/processes/${next}/abort`);
  });

  it('lockMode queue: a start waits (created) for its keys and runs once they are released', async () => {
    const holder = await fx.start('queued', { key: 'a' });
    await fx.waitForStatus(holder, 'suspended');
    // Needs shared:all too, held by the first.
    const waiter = await fx.start('queued', { key: 'b' });
    const waiting = (await fx.get(`/api/processes/${waiter}`)).body;
    expect(waiting.status).toBe('created');
    expect(waiting.locks).toEqual({ held: [], waitingFor: ['k:b', 'shared:all'] });
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await fx.get(`/api/processes/${waiter}`)).body.status).toBe('created');
    expect((await fx.put(`/api/processes/${holder}/resume`, { done: true })).status).toBe(204);
    await fx.waitForStatus(holder, 'completed');
    // Given its keys when the holder completed; the next sweep runs it.
    const ran = await fx.waitForStatus(waiter, 'suspended', 15_000);
    expect(ran.locks).toEqual({ held: ['k:b', 'shared:all'], waitingFor: [] });
    await fx.put(`/api/processes/${waiter}/abort`);
  });

  it('lockMode queue: an aborted waiter leaves the queue and is not given the keys later', async () => {
    const holder = await fx.start('queued', { key: 'c' });
    await fx.waitForStatus(holder, 'suspended');
    const waiter = await fx.start('queued', { key: 'd' });
    expect((await fx.put(`/api/processes/${waiter}/abort`)).status).toBe(204);
    expect((await fx.get(`/api/processes/${waiter}`)).body.locks).toEqual({
      held: [],
      waitingFor: [],
    });
    expect((await fx.put(`/api/processes/${holder}/resume`, { done: true })).status).toBe(204);
    await fx.waitForStatus(holder, 'completed');
    // The keys are free: nobody holds them (before the fix the aborted waiter did, for ever).
    expect((await counts()).l).toBe(0);
    const next = await fx.start('queued', { key: 'd' });
    await fx.waitForStatus(next, 'suspended');
    await fx.put(`/api/processes/${next}/abort`);
  });
});

describe('runPredicate', () => {
  it('noUncompletedInstance refuses a second start with 412 and its reason, writing nothing', async () => {
    const first = await fx.start('guarded');
    await fx.waitForStatus(first, 'suspended');
    const before = await counts();
    const refused = await fx.post('/api/processes/guarded', {});
    expect(refused.status).toBe(412);
    expect(refused.body.error.code).toBe('precondition_failed');
    expect(refused.body.error.message).toContain(first);
    expect(await counts()).toEqual(before);
    await fx.put(`/api/processes/${first}/resume`, { done: true });
    await fx.waitForStatus(first, 'completed');
    const second = await fx.start('guarded');
    await fx.put(`/api/processes/${second}/abort`);
  });

  it('starts racing each other: one passes the predicate', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => fx.post('/api/processes/guarded', {})),
    );
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 412)).toHaveLength(7);
    await fx.put(`/api/processes/${answers.find((r) => r.status === 201)!.body.id}/abort`);
  });
});

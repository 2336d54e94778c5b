import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/config/logger.ts';
import { PROCESS_STATUSES, RESUMABLE_STATUSES, TERMINAL_STATUSES } from '../src/engine/types.ts';
import { createListener, type Listener } from '../src/live/listener.ts';
import type { Orchestrator } from '../src/server.ts';
import { client } from './support/api.ts';
import { describeBothModes, useHarness } from './support/harness.ts';
import {
  connectLive,
  eventFlowSuite,
  flowOf,
  holdingStepCommits,
  startWatched,
  type LiveClient,
} from './support/live.ts';

describeBothModes('live event flow', eventFlowSuite);

describe('two API instances on one database', () => {
  // The two instances start together: the harness gives the database and closes them.
  const h = useHarness();
  let a: Orchestrator;
  let b: Orchestrator;
  let clientsA: LiveClient[];
  let clientsB: LiveClient[];

  beforeAll(async () => {
    [a, b] = await Promise.all([h.startApi(), h.startApi()]);
    clientsA = [await connectLive(a.url), await connectLive(a.url)];
    clientsB = [await connectLive(b.url)];
    for (const c of [...clientsA, ...clientsB]) {
      expect(await c.subscribe({ room: 'processes' })).toEqual({ ok: true });
    }
  });
  afterAll(async () => {
    for (const c of [...(clientsA ?? []), ...(clientsB ?? [])]) c.close();
  });

  it('each instance delivers every event of a process started on either to its own clients', async () => {
    const all = [...clientsA, ...clientsB];
    const onA = await startWatched(h.db, a.url, all, 'noop');
    const onB = await startWatched(h.db, b.url, all, 'noop');
    for (const id of [onA, onB]) {
      for (const c of all) {
        await c.waitFor((ev) => flowOf(ev, id).statuses.includes('completed'), `${id} completed`);
        expect(flowOf(c.events, id).steps.map((s) => s.name)).toEqual(['One', 'Two', 'Three']);
      }
    }
    // Each client got each event once: one relay per instance, none duplicated across instances.
    for (const c of all) {
      const steps = c.events.filter((e) => e.event === 'process:step');
      expect(new Set(steps.map((e) => e.data.id)).size).toBe(steps.length);
    }
  });

  it('the list room gets status changes but not steps of processes it did not subscribe to', async () => {
    const watcher = await connectLive(b.url);
    try {
      expect(await watcher.subscribe({ room: 'processes' })).toEqual({ ok: true });
      const id = await client(a.url).start('noop');
      await watcher.waitFor((ev) => flowOf(ev, id).statuses.includes('completed'), 'completed');
      expect(flowOf(watcher.events, id).steps).toEqual([]);
    } finally {
      watcher.close();
    }
  });
});

describe('the process list and the process rooms', () => {
  const h = useHarness({ executor: 'threadpool' });
  /** In the process list only. */
  let list: LiveClient;
  /** In each process's room only. */
  let rooms: LiveClient;
  /** In both. */
  let both: LiveClient;
  /** What the relay hears: every process event, in order. */
  let listener: Listener;
  const heard: { id: string; version: number }[] = [];

  beforeAll(async () => {
    listener = createListener({ connectionString: h.db.url, logger: silentLogger });
    listener.on('notification', (e) => {
      if (e.type === 'process') heard.push({ id: e.id, version: e.version });
    });
    await listener.start();
    [list, rooms, both] = await Promise.all([
      connectLive(h.api.url),
      connectLive(h.api.url),
      connectLive(h.api.url),
    ]);
    for (const c of [list, both])
      expect(await c.subscribe({ room: 'processes' })).toEqual({ ok: true });
  });
  afterAll(async () => {
    for (const c of [list, rooms, both]) c?.close();
    await listener?.stop();
  });

  it('a room gets every update of its process in order; the list the final status of each, in order', async () => {
    const ids = await holdingStepCommits(h.db.pool, async () => {
      const started = await Promise.all(
        Array.from({ length: 20 }, () => client(h.api.url).start('noop')),
      );
      for (const id of started)
        for (const c of [rooms, both])
          expect(await c.subscribe({ processId: id })).toEqual({ ok: true });
      return started;
    });
    const done = (c: LiveClient) =>
      c.waitFor(
        (ev) => ids.every((id) => flowOf(ev, id).statuses.includes('completed')),
        'every process completed',
      );
    await Promise.all([done(list), done(rooms), done(both)]);
    const versions = (c: LiveClient, id: string) =>
      c.events
        .filter((e) => e.event === 'process:updated' && e.data.id === id)
        .map((e) => e.data.version as number);
    // The test's own listener is one more LISTEN connection: it may hear the last commits after
    // the clients did (seen on a server with fsync on). Wait for it before comparing.
    const heardAll = () =>
      ids.every((id) => {
        const last = Math.max(...versions(both, id));
        return heard.some((h) => h.id === id && h.version >= last);
      });
    for (let waited = 0; !heardAll() && waited < 10_000; waited += 20) await sleep(20);
    for (const id of ids) {
      const all = heard.filter((h) => h.id === id).map((h) => h.version);
      expect(all.length).toBeGreaterThanOrEqual(3);
      // A client in both rooms gets every change of the process once, in order: those before it
      // joined the process's room through the list, the others through the room.
      expect(versions(both, id)).toEqual(all);
      // A client in the room only: every change since it joined.
      const since = versions(rooms, id);
      expect(since.length).toBeGreaterThanOrEqual(2);
      expect(since).toEqual(all.slice(all.length - since.length));
      expect(flowOf(rooms.events, id).statuses.at(-1)).toBe('completed');
      expect(flowOf(both.events, id).steps).toEqual(flowOf(rooms.events, id).steps);
      // The list: some of the same updates, in order, none twice, ending with `completed`.
      const some = versions(list, id);
      expect(some.filter((v) => all.includes(v))).toEqual(some);
      expect([...some].sort((a, b) => a - b)).toEqual(some);
      expect(new Set(some).size).toBe(some.length);
      expect(some.at(-1)).toBe(all.at(-1));
      expect(flowOf(list.events, id).statuses.at(-1)).toBe('completed');
      expect(flowOf(list.events, id).steps).toEqual([]);
    }
  });
});

describe('subscriptions and engine status', () => {
  const h = useHarness({ executor: 'threadpool' });
  let live: LiveClient;

  beforeAll(async () => {
    live = await connectLive(h.api.url);
  });
  afterAll(() => {
    live?.close();
  });

  it('acknowledges an unknown process or a malformed subscription with an error', async () => {
    expect(await live.subscribe({ processId: '00000000-0000-4000-8000-000000000000' })).toEqual({
      error: { code: 'process_not_found', message: expect.any(String) },
    });
    expect(await live.subscribe({ processId: 'nope' })).toMatchObject({
      error: { code: 'validation_error' },
    });
    expect(await live.subscribe({ room: 'everything' })).toMatchObject({
      error: { code: 'validation_error' },
    });
  });

  it('a client receives the engine status on connect', async () => {
    await live.waitFor((ev) => ev.some((e) => e.event === 'engine:status'), 'engine:status');
    expect(live.events.find((e) => e.event === 'engine:status')?.data).toEqual({
      globalLock: false,
      runningProcesses: 0,
      engineStatus: 'RUNNING',
    });
  });

  it('the global lock: 503 engine_paused for starts and resumes, nothing written, engine:status sent', async () => {
    const http = client(h.api.url);
    const suspended = await http.start('hello', { name: 'Ada' });
    await http.waitForStatus(suspended, 'suspended', 60_000);
    const before = live.events.length;

    const locked = await http.put('/api/settings/status', { globalLock: true });
    expect(locked.status).toBe(200);
    expect(locked.body).toEqual({ globalLock: true, runningProcesses: 0, engineStatus: 'PAUSED' });
    expect((await http.get('/api/settings/status')).body.engineStatus).toBe('PAUSED');
    await live.waitFor(
      (ev) => ev.slice(before).some((e) => e.event === 'engine:status' && e.data.globalLock),
      'engine:status with the lock',
    );
    expect(live.events.slice(before).find((e) => e.event === 'engine:status')?.data).toEqual({
      globalLock: true,
      runningProcesses: 0,
      engineStatus: 'PAUSED',
    });

    const count = async () =>
      (await h.db.pool.query('SELECT count(*)::int AS n FROM orchestrator.processes')).rows[0].n;
    const n = await count();
    const start = await http.post('/api/processes/noop', {});
    expect(start.status).toBe(503);
    expect(start.body.error.code).toBe('engine_paused');
    const resume = await http.put(`/api/processes/${suspended}/resume`, { confirmed: true });
    expect(resume.status).toBe(503);
    expect(resume.body.error.code).toBe('engine_paused');
    expect(await count()).toBe(n);
    expect((await http.get(`/api/processes/${suspended}`)).body.status).toBe('suspended');

    const unlocked = await http.put('/api/settings/status', { globalLock: false });
    expect(unlocked.body).toMatchObject({ globalLock: false, engineStatus: 'RUNNING' });
    await live.waitFor(
      (ev) =>
        ev
          .slice(before)
          .some((e) => e.event === 'engine:status' && e.data.engineStatus === 'RUNNING'),
      'engine:status RUNNING',
    );
    expect((await http.put(`/api/processes/${suspended}/resume`, { confirmed: true })).status).toBe(
      204,
    );
  });

  it('rejects a malformed settings body with 400 and changes nothing', async () => {
    const http = client(h.api.url);
    for (const body of [{}, { globalLock: 'yes' }, { globalLock: true, extra: 1 }]) {
      const r = await http.put('/api/settings/status', body);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('validation_error');
    }
    expect((await http.get('/api/settings/status')).body.globalLock).toBe(false);
  });

  it('serves the live view page and the Socket.IO client', async () => {
    const page = await fetch(`${h.api.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/socket.io/socket.io.js');
    const lib = await fetch(`${h.api.url}/socket.io/socket.io.js`);
    expect(lib.status).toBe(200);
    await lib.arrayBuffer();
    // The page's status filter and status sets come from the engine's own lists.
    const statuses = await fetch(`${h.api.url}/statuses.js`);
    expect(statuses.headers.get('content-type')).toMatch(/javascript/);
    const text = await statuses.text();
    expect(text).toContain(`export const STATUSES = ${JSON.stringify(PROCESS_STATUSES)};\n`);
    expect(text).toContain(`export const RESUMABLE = ${JSON.stringify(RESUMABLE_STATUSES)};\n`);
    expect(text).toContain(`export const TERMINAL = ${JSON.stringify(TERMINAL_STATUSES)};\n`);
  });
});

describe('notifications at the source', () => {
  const h = useHarness({ executor: 'threadpool' });
  let live: LiveClient;

  beforeAll(async () => {
    live = await connectLive(h.api.url);
    expect(await live.subscribe({ room: 'processes' })).toEqual({ ok: true });
  });
  afterAll(() => {
    live?.close();
  });

  it('a step whose commit was refused is never announced; the next committed change is', async () => {
    const id = await startWatched(h.db, h.api.url, [live], 'slow', { sleepMs: 400 });
    await live.waitFor((ev) => flowOf(ev, id).steps.length === 1, 'the first step');
    // Another runner takes the process over (as after an expired lease): the running step's
    // commit is fenced off and writes nothing, so nothing may be announced for it.
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET lease_token = gen_random_uuid(), lease_owner = 'other' WHERE id = $1`,
      [id],
    );
    await expect
      .poll(() => h.api.activeProcesses(), { timeout: 15_000, interval: 20 })
      .not.toContain(id);
    expect((await client(h.api.url).put(`/api/processes/${id}/abort`)).status).toBe(204);
    // Events of one process arrive in order: once the abort is here, the refused step would be too.
    await live.waitFor((ev) => flowOf(ev, id).statuses.includes('aborted'), 'aborted');
    const steps = await h.db.pool.query(
      `SELECT name FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
      [id],
    );
    expect(steps.rows.map((r) => r.name)).toEqual(['Step 1', 'Abort']);
    expect(flowOf(live.events, id).steps.map((s) => s.name)).toEqual(['Step 1', 'Abort']);
  });

  it('payloads stay small whatever the state size: a 2 MB state still announces every step', async () => {
    const name = 'x'.repeat(2_000_000);
    const id = await startWatched(h.db, h.api.url, [live], 'hello', { name });
    await live.waitFor((ev) => flowOf(ev, id).statuses.includes('suspended'), 'suspended');
    const flow = flowOf(live.events, id);
    expect(flow.steps.map((s) => [s.name, s.status])).toEqual([
      ['Greet', 'success'],
      ['Confirm', 'suspend'],
    ]);
    for (const e of flow.all) expect(JSON.stringify(e.data).length).toBeLessThan(1000);
  });

  it('PAUSING while a process runs, PAUSED once it stops, each sent as engine:status', async () => {
    const http = client(h.api.url);
    const id = await http.start('slow', { sleepMs: 600_000 });
    await http.waitFor(id, (p) => p.status === 'running', 60_000);
    const before = live.events.length;
    const statuses = () =>
      live.events
        .slice(before)
        .filter((e) => e.event === 'engine:status')
        .map((e) => e.data.engineStatus);
    const locked = await http.put('/api/settings/status', { globalLock: true });
    expect(locked.body).toEqual({ globalLock: true, runningProcesses: 1, engineStatus: 'PAUSING' });
    await live.waitFor(() => statuses().includes('PAUSING'), 'engine:status PAUSING');
    expect((await http.put(`/api/processes/${id}/abort`)).status).toBe(204);
    await live.waitFor(() => statuses().includes('PAUSED'), 'engine:status PAUSED');
    expect(statuses()).toEqual(['PAUSING', 'PAUSED']);
    await http.put('/api/settings/status', { globalLock: false });
    await live.waitFor(() => statuses().includes('RUNNING'), 'engine:status RUNNING');
  });
});

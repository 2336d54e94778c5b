// Events are published after their commit (src/db/events.ts), so a publisher can die between a
// commit and its NOTIFY. A listener notices and tells clients to `resync`: a publisher gone silent
// without its goodbye (kill -9 of a worker), a gap in a publisher's batch numbers. A SIGTERM'd
// worker says goodbye: no resync. A late event of an older version than one relayed is dropped.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENTS_CHANNEL } from '../src/db/events.ts';
import { useHarness } from './support/harness.ts';
import { connectLive, type LiveClient } from './support/live.ts';
import { terminate } from './support/workers.ts';

// The API in worker mode, in this process; the workers are the tests' own.
const h = useHarness({ executor: 'worker', apiIn: 'here', workers: 0 });
let live: LiveClient;

beforeAll(async () => {
  live = await connectLive(h.url);
  expect(await live.subscribe({ room: 'processes' })).toEqual({ ok: true });
});
afterAll(() => {
  live?.close();
});

const resyncs = () => live.events.filter((e) => e.event === 'resync').map((e) => e.data);
const notify = (payload: unknown) =>
  h.db.pool.query(`SELECT pg_notify($1, $2)`, [EVENTS_CHANNEL, JSON.stringify(payload)]);

/** A publisher's heartbeats reach the API: it knows the publisher. */
async function heardOf(): Promise<void> {
  // Two heartbeat intervals (1 s each) at most.
  await new Promise((r) => setTimeout(r, 2_500));
}

describe('publishers that die or skip', () => {
  it('a worker stopped with SIGTERM says goodbye: no resync', async () => {
    const worker = await h.startWorker();
    await heardOf();
    const before = resyncs().length;
    expect(await terminate(worker)).toBe(0);
    // Longer than the silence that counts as death (3 s).
    await new Promise((r) => setTimeout(r, 4_500));
    expect(resyncs().length).toBe(before);
  });

  it('a worker killed with kill -9 goes silent: clients resync (missed)', async () => {
    const worker = await h.startWorker();
    await heardOf();
    const before = resyncs().length;
    worker.child.kill('SIGKILL');
    await worker.exited;
    await live.waitFor(() => resyncs().length > before, 'resync after the kill', 15_000);
    expect(resyncs().at(-1)).toEqual({ reason: 'missed' });
  });

  it('a gap in a publisher’s batch numbers: clients resync (missed)', async () => {
    const p = randomUUID();
    await notify({ p, s: 1, e: [] });
    await notify({ p, s: 2, e: [] });
    const before = resyncs().length;
    await notify({ p, s: 4, e: [] });
    await live.waitFor(() => resyncs().length > before, 'resync after the gap');
    expect(resyncs().at(-1)).toEqual({ reason: 'missed' });
    await notify({ p, s: 5, e: [], bye: true });
  });

  it('a late event older than one already relayed is dropped; a newer one is relayed', async () => {
    const id = randomUUID();
    const event = (version: number, status: string) => ({
      type: 'process',
      id,
      workflowName: 'noop',
      status,
      lastStep: null,
      stepIndex: 0,
      isTask: false,
      lastModifiedAt: new Date().toISOString(),
      version,
    });
    const p = randomUUID();
    const mine = () =>
      live.events
        .filter((e) => e.event === 'process:updated' && e.data.id === id)
        .map((e) => e.data.status);
    await notify({ p, s: 1, e: [event(2, 'running')] });
    // Relayed before the others arrive: the list room gets one update per process and event-loop
    // turn, so notifications handled in one turn would show only the latest.
    await live.waitFor(() => mine().includes('running'), 'the first event');
    await notify({ p: randomUUID(), s: 1, e: [event(1, 'created')], bye: true });
    await notify({ p, s: 2, e: [event(3, 'completed')], bye: true });
    await live.waitFor(() => mine().includes('completed'), 'the newer event');
    expect(mine()).toEqual(['running', 'completed']);
  });
});

// The relay survives its database going away: a Postgres restart (own cluster, not the shared
// one) and a terminated LISTEN backend both end with `resync` to clients and events flowing again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnCluster } from '../scripts/support/cluster.ts';
import { client } from './support/api.ts';
import { useHarness } from './support/harness.ts';
import { connectLive, flowOf, startWatched, type LiveClient } from './support/live.ts';

const cluster = new OwnCluster({ name: 'restart', flags: ['-c', 'fsync=off'], migrate: false });
// The harness starts the cluster and the API on it, and at the end closes both.
const h = useHarness({ database: cluster, executor: 'threadpool' });
let live: LiveClient;

beforeAll(async () => {
  live = await connectLive(h.url);
  expect(await live.subscribe({ room: 'processes' })).toEqual({ ok: true });
});
afterAll(() => {
  live?.close();
});

const resyncs = () => live.events.filter((e) => e.event === 'resync').length;

/** A noop started now reaches the client, every step in order. */
async function eventsFlow(): Promise<void> {
  const id = await startWatched(h.db, h.url, [live], 'noop');
  await live.waitFor((ev) => flowOf(ev, id).statuses.includes('completed'), `${id} completed`);
  expect(flowOf(live.events, id).steps.map((s) => s.name)).toEqual(['One', 'Two', 'Three']);
}

describe('live relay across database outages', () => {
  it('relays before any outage', async () => {
    await eventsFlow();
    expect(resyncs()).toBe(0);
  });

  it('after a Postgres restart: resync, then events flow again', async () => {
    await cluster.restart();
    await live.waitFor(() => resyncs() === 1, 'resync after the restart');
    expect(live.events.filter((e) => e.event === 'resync').at(-1)?.data).toEqual({
      reason: 'reconnected',
    });
    // The client stayed connected to the API throughout: the resync reached the same socket.
    expect(live.socket.connected).toBe(true);
    const http = client(h.url);
    const deadline = Date.now() + 60_000;
    while ((await http.get('/api/health')).status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await eventsFlow();
  });

  it('after its LISTEN backend is terminated: resync, then events flow again', async () => {
    const before = resyncs();
    const { rows } = await h.db.pool.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE application_name = 'orchestrator-live'`,
    );
    expect(rows.map((r) => r.ok)).toEqual([true]);
    await live.waitFor(() => resyncs() === before + 1, 'resync after the termination');
    await eventsFlow();
  });
});

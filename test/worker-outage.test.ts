// A Postgres restart while the API and a worker run: /api/health answers 503 while the database is
// down, both reconnect, and the process finishes. Uses a cluster of its own (not the shared one).
import { describe, expect, it } from 'vitest';
import { OwnCluster } from '../scripts/support/cluster.ts';
import { useHarness } from './support/harness.ts';
import { terminate } from './support/workers.ts';

const cluster = new OwnCluster({ name: 'outage', flags: ['-c', 'fsync=off'] });

// The harness starts the cluster, checks the invariants (with the jobs) once the API and the
// worker are gone, and destroys it.
const h = useHarness({ database: cluster, invariants: { checkJobs: true } });

describe('Postgres restart in worker mode', () => {
  it('answers 503 while down; API and worker reconnect and the process completes', async () => {
    const env = { LEASE_SECONDS: '5' };
    const { api, http } = await h.startWorkerModeApi(env);
    const worker = await h.startWorker(['--concurrency', '2'], env);
    const id = await http.start('slow', { sleepMs: 1_500 });
    await http.waitFor(id, (p) => p.steps.length >= 1, 60_000);

    await cluster.stop();
    await expect
      .poll(async () => (await http.get('/api/health')).status, { timeout: 60_000 })
      .toBe(503);
    await cluster.start();
    await expect
      .poll(async () => (await http.get('/api/health')).status, { timeout: 60_000 })
      .toBe(200);

    const done = await http.waitForStatus(id, 'completed', 60_000);
    expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
    expect(done.steps.map((s: any) => s.status)).toEqual(Array(5).fill('success'));
    // New work is still picked up after the restart.
    const after = await http.start('noop');
    await http.waitForStatus(after, 'completed', 60_000);

    expect(await terminate(worker)).toBe(0);
    expect(await terminate(api)).toBe(0);
  });
});

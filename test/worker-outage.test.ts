// A Postgres restart while the API and a worker run: /api/health answers 503 while the database is
// down, both reconnect, and the process finishes. Uses a cluster of its own (not the shared one).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnCluster } from '../scripts/support/cluster.ts';
import { checkInvariants } from '../src/db/testkit/invariants.ts';
import { loadRegistry } from '../src/engine/registry.ts';
import { root } from './support/paths.ts';
import { killAll } from './support/spawn.ts';
import { startWorkerModeApi, startWorkerProcess, terminate } from './support/workers.ts';

const cluster = new OwnCluster({ name: 'outage', flags: ['-c', 'fsync=off'] });

beforeAll(() => cluster.start());
afterAll(async () => {
  await killAll();
  await cluster.destroy();
});

describe('Postgres restart in worker mode', () => {
  it('answers 503 while down; API and worker reconnect and the process completes', async () => {
    const url = cluster.url;
    const env = { LEASE_SECONDS: '5' };
    const { api, http } = await startWorkerModeApi(url, env);
    const worker = await startWorkerProcess(url, ['--concurrency', '2'], env);
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
    const client = new pg.Pool({ connectionString: url });
    client.on('error', () => {}); // the cluster stops right after this test
    try {
      const registry = await loadRegistry(`${root}/workflows`);
      expect(await checkInvariants(client, { registry, checkJobs: true })).toEqual([]);
    } finally {
      await client.end();
    }
  });
});

// Connections terminated under load (pg_terminate_backend, as a failover or an operator would):
// neither the API nor a worker may crash, and every process still finishes. A backend killed
// between two queries of a transaction once emitted an unhandled 'error' that killed the API.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../src/db/testkit/invariants.ts';
import { loadRegistry } from '../src/engine/registry.ts';
import { useHarness } from './support/harness.ts';
import { root } from './support/paths.ts';
import { terminate } from './support/workers.ts';

const h = useHarness();

describe('terminated connections', () => {
  it('keeps API and worker alive while their backends are killed again and again', async () => {
    const env = { LEASE_SECONDS: '2' };
    const { api, http } = await h.startWorkerModeApi(env);
    const worker = await h.startWorker(['--concurrency', '4'], env);

    let stop = false;
    const killer = (async () => {
      let killed = 0;
      while (!stop) {
        const { rowCount } = await h.db.pool.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND backend_type = 'client backend'
              AND application_name LIKE 'orchestrator-%'`,
        );
        killed += rowCount ?? 0;
        // Often enough that most transactions meet a kill, not so often that none can finish
        // (on a busy machine a start takes longer than a few tens of milliseconds).
        await sleep(100);
      }
      return killed;
    })();

    // Starts for 4 s, and on until a few got through (on a busy machine a start may lose every
    // race with the killer for a while); at most 60 s.
    const ids: string[] = [];
    const started = Date.now();
    while (Date.now() - started < 4_000 || (ids.length < 5 && Date.now() - started < 60_000)) {
      const starts = await Promise.all(
        Array.from({ length: 10 }, () => http.post('/api/processes/noop', {})),
      );
      for (const r of starts) if (r.status === 201) ids.push((r.body as { id: string }).id);
    }
    stop = true;
    expect(await killer).toBeGreaterThan(0);
    expect(ids.length).toBeGreaterThan(0);

    // Both still run (a crash would have ended them) and every started process completes.
    expect(api.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
    for (const id of ids) await http.waitForStatus(id, 'completed', 60_000);
    expect(await terminate(worker)).toBe(0);
    expect(await terminate(api)).toBe(0);
    const registry = await loadRegistry(`${root}/workflows`);
    expect(await checkInvariants(h.db.pool, { registry, checkJobs: true })).toEqual([]);
  });
});

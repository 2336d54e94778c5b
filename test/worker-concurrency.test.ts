// `--concurrency N` bounds the processes a worker runs at once across all its queues, not per queue.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';
import { terminate } from './support/workers.ts';

const h = useHarness();

describe('worker concurrency', () => {
  it('runs at most N processes at once, from workflow and task queues together', async () => {
    const env = { WORKFLOWS_DIR: fixtures('workflows-sleepy') };
    const { api, http } = await h.startWorkerModeApi(env);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await http.start('sleepy', {}), await http.start('sleepy_task', {}));
    }
    const worker = await h.startWorker(['--concurrency', '2'], env);

    let most = 0;
    for (;;) {
      const { rows } = await h.db.pool.query<{ running: number; open: number }>(
        `SELECT count(*) FILTER (WHERE status = 'running')::int AS running,
                count(*) FILTER (WHERE status <> 'completed')::int AS open
           FROM orchestrator.processes`,
      );
      most = Math.max(most, rows[0]!.running);
      if (rows[0]!.open === 0) break;
      await sleep(10);
    }
    expect(most).toBe(2);
    for (const id of ids)
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('completed');
    expect(await terminate(worker)).toBe(0);
    expect(await terminate(api)).toBe(0);
  });
});

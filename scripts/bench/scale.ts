// Item 6, scale: the failed-process list and the status counts on a large table (seeded in bulk
// with a realistic mix of statuses), p50/p99 of sequential requests over HTTP.
import pg from 'pg';
import { wallClockMs } from './client.ts';
import { latencyRun, type LatencyRun } from './stats.ts';

/** Seeds `total` processes: 90 % completed, 3 % failed, 3 % suspended, the rest in between. */
export async function seedProcesses(url: string, total: number): Promise<number> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const started = performance.now();
    for (let done = 0; done < total; done += 250_000) {
      const n = Math.min(250_000, total - done);
      await db.query(
        `INSERT INTO orchestrator.processes
           (id, workflow_name, status, last_step, step_index, is_task, target, created_by,
            started_at, last_modified_at)
         SELECT gen_random_uuid(), CASE WHEN task THEN 'noop_task' ELSE 'noop' END, status,
                'Two', 2, task, CASE WHEN task THEN 'system' ELSE 'modify' END, 'seed', t, t
           FROM (SELECT random() < 0.25 AS task,
                        now() - random() * interval '365 days' AS t,
                        CASE WHEN r < 0.90 THEN 'completed' WHEN r < 0.93 THEN 'failed'
                             WHEN r < 0.96 THEN 'suspended' WHEN r < 0.98 THEN 'aborted'
                             WHEN r < 0.99 THEN 'waiting' ELSE 'api_unavailable' END AS status
                   FROM (SELECT random() AS r FROM generate_series(1, $1)) g) s`,
        [n],
      );
    }
    await db.query('VACUUM ANALYZE orchestrator.processes');
    return (performance.now() - started) / 1000;
  } finally {
    await db.end();
  }
}

async function timedGet(url: string): Promise<number> {
  const t0 = wallClockMs();
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  await res.arrayBuffer();
  return wallClockMs() - t0;
}

export interface ScaleRuns {
  list: LatencyRun[];
  counts: LatencyRun[];
}

export async function measureScale(
  apiUrl: string,
  opts: { requests: number; runs: number },
): Promise<ScaleRuns> {
  const list = `${apiUrl}/api/processes?status=failed&limit=50`;
  const counts = `${apiUrl}/api/processes/status-counts`;
  for (let i = 0; i < 10; i++) await Promise.all([timedGet(list), timedGet(counts)]);
  const out: ScaleRuns = { list: [], counts: [] };
  for (let run = 0; run < opts.runs; run++) {
    const l: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < opts.requests; i++) {
      l.push(await timedGet(list));
      c.push(await timedGet(counts));
    }
    out.list.push(latencyRun(l));
    out.counts.push(latencyRun(c));
  }
  return out;
}

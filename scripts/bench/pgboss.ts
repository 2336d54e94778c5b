// Item 2, the pg-boss floor: no-op jobs through pg-boss alone, with the queue settings and fetch
// pattern of worker mode (one job per fetch, completed, then the next; `--concurrency` slots per
// worker) and the same number of worker processes. Jobs per second, from the bulk insert to the last completion.
import { setTimeout as sleep } from 'node:timers/promises';
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { NodeProcess, WORKER_CONCURRENCY } from './system.ts';

const SCHEMA = 'bench_pgboss';
const QUEUE = 'bench_noop';
/** Slots per worker process: the same `--concurrency` as the benchmark's workers. */
export const FLOOR_CONCURRENCY = WORKER_CONCURRENCY;

export async function measurePgBossFloor(
  url: string,
  opts: { workers: number; jobs: number; runs: number },
): Promise<number[]> {
  const boss = new PgBoss({ connectionString: url, schema: SCHEMA });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue(QUEUE, { notify: true, expireInSeconds: 24 * 60 * 60 });
  const workers = Array.from(
    { length: opts.workers },
    () =>
      new NodeProcess(
        'scripts/bench/pgboss-worker.ts',
        [url, SCHEMA, QUEUE, String(FLOOR_CONCURRENCY)],
        {},
      ),
  );
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    for (const w of workers) {
      await w.waitFor(/worker ready/, 'a pg-boss worker');
    }
    const results: number[] = [];
    for (let run = 0; run < opts.runs; run++) {
      await db.query(`DELETE FROM ${SCHEMA}.job WHERE name = $1`, [QUEUE]);
      const started = performance.now();
      for (let sent = 0; sent < opts.jobs; sent += 1000) {
        const n = Math.min(1000, opts.jobs - sent);
        await boss.insert(
          QUEUE,
          Array.from({ length: n }, (_, i) => ({ data: { i: sent + i } })),
        );
      }
      const deadline = Date.now() + 120_000;
      for (;;) {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${SCHEMA}.job WHERE name = $1 AND state = 'completed'`,
          [QUEUE],
        );
        if ((rows[0]?.n ?? 0) >= opts.jobs) break;
        if (Date.now() > deadline)
          throw new Error(`pg-boss floor: ${rows[0]?.n}/${opts.jobs} jobs completed in 120 s`);
        await sleep(20);
      }
      results.push(opts.jobs / ((performance.now() - started) / 1000));
    }
    return results;
  } finally {
    await db.end();
    await Promise.all(workers.map((w) => w.stop()));
    await boss.stop({ graceful: false });
  }
}

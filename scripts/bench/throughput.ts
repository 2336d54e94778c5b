// Item 3, throughput: processes started over HTTP and drained by the executor, from the first
// POST to the last completion (commit time in Postgres). Also with bigger states.
import pg from 'pg';
import { startMany, waitAllCompleted, wallClockMs } from './client.ts';
import type { BenchDatabase } from './system.ts';

export interface ThroughputRun {
  processesPerSecond: number;
  stepsPerSecond: number;
}

/** Requests in flight while starting processes. */
const POST_CONCURRENCY = 32;

export async function measureThroughput(
  db: BenchDatabase,
  apiUrl: string,
  opts: { processes: number; stateBytes: number },
): Promise<ThroughputRun> {
  await db.reset();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const [workflow, body] =
      opts.stateBytes > 0
        ? ['noop_payload', { payload: 'x'.repeat(opts.stateBytes) }]
        : ['noop', {}];
    const started = wallClockMs();
    await startMany(apiUrl, workflow, body, opts.processes, POST_CONCURRENCY);
    const last = await waitAllCompleted(client, opts.processes, 300_000);
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM orchestrator.process_steps WHERE status = 'success'`,
    );
    const seconds = (last - started) / 1000;
    return {
      processesPerSecond: opts.processes / seconds,
      stepsPerSecond: (rows[0]?.n ?? 0) / seconds,
    };
  } finally {
    await client.end();
  }
}

// Item 3, throughput: processes started over HTTP and drained by the executor, from the first
// POST to the last completion (commit time in Postgres). Also with bigger states. With a cost
// probe (item 8), also what the run cost the database: the probe resets, polls and reads on its
// own counted connection, so its transactions can be told apart.
import pg from 'pg';
import { startMany, waitAllCompleted, wallClockMs } from './client.ts';
import { costBetween, type CostProbe, type RunCost } from './dbcost.ts';
import type { BenchDatabase } from './system.ts';

export interface ThroughputRun {
  processesPerSecond: number;
  stepsPerSecond: number;
  /** With a cost probe: the database's work in this run. */
  cost?: RunCost;
}

/** Requests in flight while starting processes. */
export const POST_CONCURRENCY = 32;

export async function measureThroughput(
  db: BenchDatabase,
  apiUrl: string,
  opts: {
    processes: number;
    stateBytes: number;
    cost?: CostProbe;
    /**
     * Time for the starts and completions (default 5 minutes); past it the run fails with a
     * TimeLimitError, the starts still in flight abandoned.
     */
    timeoutMs?: number;
  },
): Promise<ThroughputRun> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const probe = opts.cost;
  const client = probe?.client ?? new pg.Client({ connectionString: db.url });
  if (!probe) await client.connect();
  try {
    await db.reset(client);
    const before = await probe?.read();
    const windowStart = Date.now();
    const [workflow, body] =
      opts.stateBytes > 0
        ? ['noop_payload', { payload: 'x'.repeat(opts.stateBytes) }]
        : ['noop', {}];
    const started = wallClockMs();
    const deadline = Date.now() + timeoutMs;
    await startMany(
      apiUrl,
      workflow,
      body,
      opts.processes,
      POST_CONCURRENCY,
      AbortSignal.timeout(timeoutMs),
    );
    const last = await waitAllCompleted(client, opts.processes, deadline - Date.now());
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM orchestrator.process_steps WHERE status = 'success'`,
    );
    const seconds = (last - started) / 1000;
    const run: ThroughputRun = {
      processesPerSecond: opts.processes / seconds,
      stepsPerSecond: (rows[0]?.n ?? 0) / seconds,
    };
    if (probe && before) {
      const settleMs = await probe.settle(windowStart, Date.now());
      run.cost = costBetween(before, await probe.read(), settleMs);
    }
    return run;
  } finally {
    if (!probe) await client.end();
  }
}

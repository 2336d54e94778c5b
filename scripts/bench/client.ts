// HTTP helpers of the benchmark client: starting processes and waiting for them in the database.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

/** Wall-clock now in milliseconds with sub-millisecond precision (comparable with Postgres's now()). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export async function startProcess(base: string, workflow: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}/api/processes/${workflow}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`POST ${workflow}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Starts `total` processes with `concurrency` requests in flight. */
export async function startMany(
  base: string,
  workflow: string,
  body: unknown,
  total: number,
  concurrency: number,
): Promise<void> {
  const text = JSON.stringify(body);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        next++;
        await startProcess(base, workflow, text);
      }
    }),
  );
}

/**
 * Waits until `total` processes are completed; returns the commit time of the last one (epoch
 * ms, from Postgres). Fails when any ended otherwise or when `timeoutMs` passes.
 */
export async function waitAllCompleted(
  db: pg.Client,
  total: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<{ done: number; bad: number; last: number }>(
      `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done,
              count(*) FILTER (WHERE status NOT IN ('completed', 'created', 'running', 'resumed'))::int AS bad,
              extract(epoch FROM max(last_modified_at)) * 1000 AS last
         FROM orchestrator.processes`,
    );
    const r = rows[0]!;
    if (r.bad > 0) throw new Error(`${r.bad} processes ended other than completed`);
    if (r.done >= total) return Number(r.last);
    if (Date.now() > deadline) throw new Error(`only ${r.done}/${total} completed in time`);
    await sleep(50);
  }
}

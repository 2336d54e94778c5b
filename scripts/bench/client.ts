// HTTP helpers of the benchmark client: starting processes and waiting for them in the database.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

// Plain node:http with keep-alive: fetch cost the client a third of a core at 1,000 starts/s,
// CPU the system under test then lacked on a 2-core machine.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(
  url: string,
  body: string,
  signal?: AbortSignal,
  retried = false,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        ...(signal ? { signal } : {}),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The keep-alive race (Node.js docs, `request.reusedSocket`): the server closed an idle
      // socket just as this request went out on it, so nothing reached the server; sent again once.
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET')
        resolve(post(url, body, signal, true));
      else reject(err);
    });
    req.end(body);
  });
}

/** Wall-clock now in milliseconds with sub-millisecond precision (comparable with Postgres's now()). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Thrown when a wait runs out of time (rather than failing otherwise). */
export class TimeLimitError extends Error {
  override name = 'TimeLimitError';
}

export async function startProcess(
  base: string,
  workflow: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<string> {
  const res = await post(
    `${base}/api/processes/${workflow}`,
    typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  );
  if (res.status !== 201) throw new Error(`POST ${workflow}: ${res.status} ${res.text}`);
  return (JSON.parse(res.text) as { id: string }).id;
}

/**
 * Starts `total` processes with `concurrency` requests in flight; when `signal` aborts, the
 * requests in flight are abandoned and it fails with a TimeLimitError.
 */
export async function startMany(
  base: string,
  workflow: string,
  body: unknown,
  total: number,
  concurrency: number,
  signal?: AbortSignal,
): Promise<void> {
  const text = JSON.stringify(body);
  let next = 0;
  let done = 0;
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, total) }, async () => {
        while (next < total) {
          signal?.throwIfAborted();
          next++;
          await startProcess(base, workflow, text, signal);
          done++;
        }
      }),
    );
  } catch (err) {
    if (signal?.aborted) throw new TimeLimitError(`only ${done}/${total} started in time`);
    throw err;
  }
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
    if (Date.now() > deadline)
      throw new TimeLimitError(`only ${r.done}/${total} completed in time`);
    await sleep(50);
  }
}

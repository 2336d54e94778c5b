// The mixed load: starts processes over HTTP and keeps them moving (resumes failed `flaky` and
// suspended `hello` processes) until told to stop.
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadStats {
  started: string[];
  /** POSTs that got no 201 (API down, database restarting): nothing was written for them. */
  refused: number;
  resumes: number;
}

const MIX: [workflow: string, weight: number, input: () => unknown][] = [
  ['noop', 45, () => ({})],
  ['noop_task', 20, () => ({})],
  ['counted', 12, () => ({})],
  ['flaky', 8, () => ({ failTimes: 1 + Math.floor(Math.random() * 2) })],
  ['hello', 8, () => ({ name: 'chaos' })],
  ['slow', 7, () => ({ sleepMs: 50 + Math.floor(Math.random() * 150) })],
];
const TOTAL_WEIGHT = MIX.reduce((n, [, w]) => n + w, 0);

function pick(): [string, unknown] {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [name, w, input] of MIX) {
    r -= w;
    if (r < 0) return [name, input()];
  }
  return ['noop', {}];
}

async function call(
  base: () => string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response | undefined> {
  try {
    return await fetch(base() + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch {
    return undefined;
  }
}

export function createLoad(base: () => string) {
  const stats: LoadStats = { started: [], refused: 0, resumes: 0 };
  let stopStarting = false;
  let stopAll = false;

  /**
   * Starts processes until `total` have been started, with `concurrency` requests in flight and
   * at most `perSecond` starts a second, so that the load spans the faults injected meanwhile.
   */
  async function starter(total: number, concurrency: number, perSecond: number): Promise<void> {
    const t0 = Date.now();
    const before = stats.started.length;
    const one = async () => {
      while (!stopStarting && stats.started.length + inFlight < total) {
        const ahead = (stats.started.length + inFlight - before) / perSecond;
        inFlight++;
        const wait = t0 + ahead * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        const [workflow, input] = pick();
        const res = await call(base, 'POST', `/api/processes/${workflow}`, input);
        inFlight--;
        if (res?.status === 201) stats.started.push(((await res.json()) as { id: string }).id);
        else {
          stats.refused++;
          await res?.body?.cancel();
          await sleep(100);
        }
      }
    };
    let inFlight = 0;
    await Promise.all(Array.from({ length: concurrency }, one));
  }

  /** Resumes failed flaky and suspended hello processes, forever until stopped. */
  async function resumer(): Promise<void> {
    while (!stopAll) {
      for (const [query, body] of [
        ['status=failed&workflow=flaky', undefined],
        ['status=suspended&workflow=hello', { confirmed: true }],
      ] as const) {
        const res = await call(base, 'GET', `/api/processes?${query}&limit=200`);
        if (res?.status !== 200) continue;
        const { items } = (await res.json()) as { items: { id: string }[] };
        await Promise.all(
          items.map(async (p) => {
            const r = await call(base, 'PUT', `/api/processes/${p.id}/resume`, body);
            await r?.body?.cancel();
            if (r?.status === 204) stats.resumes++;
          }),
        );
      }
      await sleep(300);
    }
  }

  return {
    stats,
    starter,
    resumer,
    stopStarting: () => (stopStarting = true),
    stop: () => {
      stopStarting = true;
      stopAll = true;
    },
    call: (method: string, path: string, body?: unknown) => call(base, method, path, body),
  };
}
export type Load = ReturnType<typeof createLoad>;

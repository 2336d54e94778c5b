// The mixed load: starts processes over HTTP and keeps them moving (resumes failed `flaky` and
// suspended `hello` processes, answers the callbacks of `callback_demo` ones) until told to stop.
// Each request goes to one of the API instances up at the time, at random.
import { setTimeout as sleep } from 'node:timers/promises';
import { answerCallbacks, type CallbackPlan, type CallbackRecord } from './callbacks.ts';

export interface LoadStats {
  started: string[];
  /** POSTs that got no 201 (API down, database restarting): nothing was written for them. */
  refused: number;
  resumes: number;
  /** callback_demo processes: how the load answers each (chosen at its start), and what it sent. */
  callbacks: Map<string, CallbackRecord>;
}

/** callback_demo processes the load never answers: ~10%, with a short timeout that fails them. */
const NEVER_SHARE = 0.1;
/** The other plans, by weight: once, twice at the same time, after progress and a wrong token. */
const ANSWER_PLANS: [CallbackPlan, number][] = [
  ['once', 6],
  ['twice', 2],
  ['progress', 2],
];

function callbackPlan(): CallbackPlan {
  if (Math.random() < NEVER_SHARE) return 'never';
  let r = Math.random() * ANSWER_PLANS.reduce((n, [, w]) => n + w, 0);
  for (const [plan, w] of ANSWER_PLANS) {
    r -= w;
    if (r < 0) return plan;
  }
  return 'once';
}

/** A start: the workflow, its input and, for callback_demo, how its callback will be answered. */
interface Start {
  workflow: string;
  input: unknown;
  plan?: CallbackPlan;
}

const MIX: [workflow: string, weight: number, start: () => Omit<Start, 'workflow'>][] = [
  ['noop', 45, () => ({ input: {} })],
  ['noop_task', 20, () => ({ input: {} })],
  ['counted', 12, () => ({ input: {} })],
  ['flaky', 8, () => ({ input: { failTimes: 1 + Math.floor(Math.random() * 2) } })],
  ['hello', 8, () => ({ input: { name: 'chaos' } })],
  ['slow', 7, () => ({ input: { sleepMs: 50 + Math.floor(Math.random() * 150) } })],
  [
    'retry_demo',
    6,
    () => ({
      input: {
        failTimes: Math.floor(Math.random() * 4),
        backoffSeconds: 0.2 + Math.round(Math.random() * 8) / 10,
      },
    }),
  ],
  [
    'callback_demo',
    6,
    () => {
      const plan = callbackPlan();
      // Answered ones keep the default timeout (300 s): they must never time out.
      const input = plan === 'never' ? { timeoutSeconds: 2 + Math.floor(Math.random() * 3) } : {};
      return { input, plan };
    },
  ],
];
const TOTAL_WEIGHT = MIX.reduce((n, [, w]) => n + w, 0);

function pick(): Start {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [workflow, w, start] of MIX) {
    r -= w;
    if (r < 0) return { workflow, ...start() };
  }
  return { workflow: 'noop', input: {} };
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response | undefined> {
  try {
    return await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch {
    return undefined;
  }
}

/** `bases`: the URLs of the API instances up now (requests go to one of them at random). */
export function createLoad(bases: () => string[]) {
  const base = () => {
    const up = bases();
    return up[Math.floor(Math.random() * up.length)] ?? 'http://127.0.0.1:1';
  };
  const stats: LoadStats = { started: [], refused: 0, resumes: 0, callbacks: new Map() };
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
        const { workflow, input, plan } = pick();
        const res = await call(base(), 'POST', `/api/processes/${workflow}`, input);
        inFlight--;
        if (res?.status === 201) {
          const { id } = (await res.json()) as { id: string };
          stats.started.push(id);
          if (plan) stats.callbacks.set(id, { plan, posts: [] });
        } else {
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
        const res = await call(base(), 'GET', `/api/processes?${query}&limit=200`);
        if (res?.status !== 200) continue;
        const { items } = (await res.json()) as { items: { id: string }[] };
        await Promise.all(
          items.map(async (p) => {
            const r = await call(base(), 'PUT', `/api/processes/${p.id}/resume`, body);
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
    /** Answers the callbacks of awaiting callback_demo processes, until stopped (see callbacks.ts). */
    answerer: () =>
      answerCallbacks({
        call: (method, path, body) => call(base(), method, path, body),
        records: stats.callbacks,
        stopped: () => stopAll,
      }),
    stopStarting: () => (stopStarting = true),
    stop: () => {
      stopStarting = true;
      stopAll = true;
    },
    call: (method: string, path: string, body?: unknown) => call(base(), method, path, body),
    /** A request to API instance `i` of those up now (modulo their number). */
    callOn: (i: number, method: string, path: string, body?: unknown) => {
      const up = bases();
      return call(up[i % Math.max(1, up.length)] ?? 'http://127.0.0.1:1', method, path, body);
    },
    /** Told to stop starting (the end of the load, or a fault not recovered from). */
    get stoppedStarting() {
      return stopStarting;
    },
    get stopped() {
      return stopAll;
    },
  };
}
export type Load = ReturnType<typeof createLoad>;

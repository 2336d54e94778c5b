// The mixed load: starts processes over HTTP and keeps them moving (repairs failed `flaky` ones:
// resumes, skips or patches the state; resumes suspended `hello` processes; answers the callbacks
// of `callback_demo` ones; tries to resume waiting `nightly_validation` parents, aborts some)
// until told to stop. Each request goes to one of the API instances up at the time, at random.
import { setTimeout as sleep } from 'node:timers/promises';
import { answerCallbacks, type CallbackPlan, type CallbackRecord } from './callbacks.ts';

export interface LoadStats {
  started: string[];
  /** POSTs that got no 201 (API down, database restarting): nothing was written for them. */
  refused: number;
  resumes: number;
  /**
   * Processes a fault's racing resumes got a 204 or no answer for: a resume wakes a sleep at once
   * (README, `.sleep`), so these may end a `sleep_demo` wait early by design.
   */
  resumedByFaults: Set<string>;
  /** callback_demo processes: how the load answers each (chosen at its start), and what it sent. */
  callbacks: Map<string, CallbackRecord>;
  /** Failed flaky processes: how the load repairs each (chosen when first seen failed), the answers. */
  repairs: Map<string, RepairRecord>;
  /** nightly_validation parents seen waiting for their children: what the load did to each. */
  parents: Map<string, ParentRecord>;
}

/** An answer of the API: its status (0: none came, the request may or may not have applied). */
type Answer = number;

export type RepairPlan = 'resume' | 'skip' | 'patch';
export interface RepairRecord {
  plan: RepairPlan;
  answers: Answer[];
}

/** Shares of failed flaky processes skipped and patched (`{"state": {"failTimes": 0}}`). */
const SKIP_SHARE = 0.2;
const PATCH_SHARE = 0.2;

export interface ParentRecord {
  /** `abort`: aborted while waiting for its children (~15%); `wait`: left to go on by itself. */
  plan: 'wait' | 'abort';
  /** Answers to resuming it while it waited (status and error code): 409 waiting_for_children. */
  resumes: string[];
  aborts: Answer[];
  /** Aborted by the load after it failed because a child was aborted (by a fault). */
  abortedAfterChildAborted: boolean;
}

const PARENT_ABORT_SHARE = 0.15;

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
  // Each child's step takes delayMs: faults hit parents while their children are mid-way.
  ['nightly_validation', 2, () => ({ input: { delayMs: 100 + Math.floor(Math.random() * 700) } })],
  ['sleep_demo', 3, () => ({ input: { seconds: 1 + Math.round(Math.random() * 20) / 10 } })],
  // A step past its time limit, ignoring its signal: some end within the grace, the others lose
  // their thread, which the steps sharing it must not notice.
  ['overtime', 1, () => ({ input: { sleepMs: 2_000 + Math.floor(Math.random() * 8_000) } })],
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
      // Writes say JSON also without a body, as the API asks without authentication.
      headers: method === 'GET' ? {} : { 'content-type': 'application/json' },
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
  const stats: LoadStats = {
    started: [],
    refused: 0,
    resumes: 0,
    resumedByFaults: new Set(),
    callbacks: new Map(),
    repairs: new Map(),
    parents: new Map(),
  };
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

  const list = async (query: string): Promise<{ id: string; failedReason?: string | null }[]> => {
    const res = await call(base(), 'GET', `/api/processes?${query}&limit=200`);
    if (res?.status !== 200) {
      await res?.body?.cancel();
      return [];
    }
    return ((await res.json()) as { items: { id: string; failedReason?: string | null }[] }).items;
  };
  const put = async (path: string, body?: unknown): Promise<[Answer, string]> => {
    const r = await call(base(), 'PUT', path, body);
    if (!r) return [0, ''];
    const json =
      r.status === 204
        ? undefined
        : ((await r.json().catch(() => undefined)) as { error?: { code?: string } } | undefined);
    return [r.status, json?.error?.code ?? ''];
  };

  /** A failed flaky process: resumed, skipped or patched, the same way each time it is seen. */
  async function repair(id: string): Promise<void> {
    let record = stats.repairs.get(id);
    if (!record) {
      const r = Math.random();
      const plan: RepairPlan =
        r < SKIP_SHARE ? 'skip' : r < SKIP_SHARE + PATCH_SHARE ? 'patch' : 'resume';
      record = { plan, answers: [] };
      stats.repairs.set(id, record);
    }
    const [answer] =
      record.plan === 'skip'
        ? await put(`/api/processes/${id}/skip`)
        : await put(
            `/api/processes/${id}/resume`,
            record.plan === 'patch' ? { state: { failTimes: 0 } } : undefined,
          );
    record.answers.push(answer);
    if (answer === 204) stats.resumes++;
  }

  /**
   * A nightly_validation parent waiting for its children: the first time seen, either aborted or
   * resumed (refused: it goes on by itself); aborted again while its abort got no answer.
   */
  async function parentWaiting(id: string): Promise<void> {
    let record = stats.parents.get(id);
    if (!record) {
      const plan = Math.random() < PARENT_ABORT_SHARE ? 'abort' : 'wait';
      record = { plan, resumes: [], aborts: [], abortedAfterChildAborted: false };
      stats.parents.set(id, record);
      if (plan === 'wait') {
        const [status, code] = await put(`/api/processes/${id}/resume`);
        record.resumes.push(`${status} ${code}`.trim());
      }
    }
    if (record.plan === 'abort' && !record.aborts.includes(204)) {
      record.aborts.push((await put(`/api/processes/${id}/abort`))[0]);
    }
  }

  /** Resumes, repairs and aborts (see the top of the file), forever until stopped. */
  async function resumer(): Promise<void> {
    while (!stopAll) {
      await Promise.all((await list('status=failed&workflow=flaky')).map((p) => repair(p.id)));
      await Promise.all(
        (await list('status=suspended&workflow=hello')).map(async (p) => {
          const [answer] = await put(`/api/processes/${p.id}/resume`, { confirmed: true });
          if (answer === 204) stats.resumes++;
        }),
      );
      await Promise.all(
        (await list('status=waiting&workflow=nightly_validation')).map((p) => parentWaiting(p.id)),
      );
      // Failed because a fault aborted one of its children: the load ends it (a resume would
      // start the step over); any other failure is left for the end checks to report.
      await Promise.all(
        (await list('status=failed&workflow=nightly_validation')).map(async (p) => {
          if (!/^child \S+ \(validate_device\) was aborted$/.test(p.failedReason ?? '')) return;
          const [answer] = await put(`/api/processes/${p.id}/abort`);
          const record = stats.parents.get(p.id);
          if (answer === 204 && record) record.abortedAfterChildAborted = true;
          else if (answer === 204)
            stats.parents.set(p.id, {
              plan: 'wait',
              resumes: [],
              aborts: [],
              abortedAfterChildAborted: true,
            });
        }),
      );
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

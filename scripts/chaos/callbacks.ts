// The load's external system for `callback_demo`: it finds the processes awaiting a callback,
// reads the callback URL from their state and posts to it the way its plan (chosen at the
// process's start) says: once; twice at the same time; after a progress post and a post with a
// wrong token; or never (those time out). Every post and the answer it got is recorded, for the
// checker (step-kinds.ts) to compare with what the database says happened.
import { setTimeout as sleep } from 'node:timers/promises';

export type CallbackPlan = 'once' | 'twice' | 'progress' | 'never';

export interface CallbackPost {
  /** The callback's token (a process has a new one each time its callback step runs). */
  token: string;
  kind: 'result' | 'progress' | 'wrong_token';
  payload: unknown;
  /** The HTTP status, or `other` when no answer came (API down, connection cut). */
  answer: number | 'other';
}

export interface CallbackRecord {
  plan: CallbackPlan;
  posts: CallbackPost[];
}

/** Answers that settle a post: applied, refused as not awaited, refused as unknown. */
const DEFINITIVE = new Set<number | 'other'>([204, 409, 404]);
/** Posts of one callback before giving up on it until the next look (the API may be down). */
const TRIES = 20;

interface Options {
  call: (method: string, path: string, body?: unknown) => Promise<Response | undefined>;
  records: Map<string, CallbackRecord>;
  stopped: () => boolean;
}

/** Looks for awaiting callback_demo processes every 200 ms and answers them, until stopped. */
export async function answerCallbacks(o: Options): Promise<void> {
  /** Tokens whose answer is settled (a 204, 409 or 404 came back). */
  const settled = new Set<string>();
  const busy = new Map<string, Promise<void>>();
  let seq = 0;

  async function post(
    record: CallbackRecord,
    path: string,
    token: string,
    kind: CallbackPost['kind'],
    payload: unknown,
  ): Promise<number | 'other'> {
    const url = kind === 'progress' ? `${path}/progress` : path;
    const res = await o.call('POST', url, payload);
    await res?.body?.cancel();
    const answer = res?.status ?? 'other';
    record.posts.push({ token, kind, payload, answer });
    return answer;
  }

  /** Posts results until one is settled; true when settled. */
  async function answer(record: CallbackRecord, id: string, path: string, token: string) {
    for (let i = 0; i < TRIES && !o.stopped(); i++) {
      if (i > 0) await sleep(500);
      const status = await post(record, path, token, 'result', { job: `${id}:${++seq}` });
      if (DEFINITIVE.has(status)) return true;
    }
    return false;
  }

  async function handle(id: string): Promise<void> {
    if (o.records.get(id)?.plan === 'never') return;
    const res = await o.call('GET', `/api/processes/${id}`);
    if (res?.status !== 200) {
      await res?.body?.cancel();
      return;
    }
    const p = (await res.json()) as {
      status: string;
      currentState: { callbackUrl?: string; timeoutSeconds?: number };
    };
    const url = p.currentState.callbackUrl;
    if (p.status !== 'awaiting_callback' || !url) return;
    let record = o.records.get(id);
    if (!record) {
      // Started by a POST whose 201 was lost: its input tells which plan it had.
      record = { plan: (p.currentState.timeoutSeconds ?? 300) < 300 ? 'never' : 'once', posts: [] };
      o.records.set(id, record);
      if (record.plan === 'never') return;
    }
    // The URL's host is the API of the run that handed it out; post to the current one.
    const path = new URL(url).pathname;
    const token = path.slice(path.lastIndexOf('/') + 1);
    if (settled.has(token)) return;
    let done = false;
    switch (record.plan) {
      case 'once':
        done = await answer(record, id, path, token);
        break;
      case 'twice': {
        const both = await Promise.all(
          [1, 2].map(() => post(record, path, token, 'result', { job: `${id}:${++seq}` })),
        );
        done = both.some((s) => DEFINITIVE.has(s)) || (await answer(record, id, path, token));
        break;
      }
      case 'progress': {
        await post(record, path, token, 'progress', { percent: 50 });
        const wrong = `${path.slice(0, -token.length)}${token.slice(1)}${token[0] === 'A' ? 'B' : 'A'}`;
        await post(record, wrong, token, 'wrong_token', { job: `${id}:wrong` });
        done = await answer(record, id, path, token);
        break;
      }
      case 'never':
        return;
    }
    if (done) settled.add(token);
  }

  while (!o.stopped()) {
    const res = await o.call(
      'GET',
      '/api/processes?status=awaiting_callback&workflow=callback_demo&limit=1000&sort=startedAt:asc',
    );
    if (res?.status === 200) {
      const { items } = (await res.json()) as { items: { id: string }[] };
      for (const { id } of items) {
        if (busy.has(id)) continue;
        busy.set(
          id,
          handle(id).finally(() => busy.delete(id)),
        );
      }
    } else await res?.body?.cancel();
    await sleep(200);
  }
  await Promise.all(busy.values());
}

// Socket.IO test client and the event-flow suite, run in both executors.
import type pg from 'pg';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SubscribeAck, Subscription } from '../../src/live/events.ts';
import { client } from './api.ts';
import type { TestDatabase } from './database.ts';
import { useHarness, type Executor } from './harness.ts';
import { terminate } from './workers.ts';

export interface Received {
  event: string;
  data: any;
}

export interface LiveClient {
  socket: Socket;
  /** Every event received so far, in arrival order. */
  events: Received[];
  subscribe(s: Subscription | Record<string, unknown>): Promise<SubscribeAck>;
  /** Polls the received events until `pred` holds (up to `timeoutMs`). */
  waitFor(pred: (events: Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

const EVENTS = ['process:updated', 'process:step', 'engine:status', 'resync'];

/** A real socket.io-client, connected (websocket transport) and recording every event. */
export async function connectLive(baseUrl: string): Promise<LiveClient> {
  const socket = io(baseUrl, { transports: ['websocket'], reconnection: true, forceNew: true });
  const events: Received[] = [];
  for (const event of EVENTS) socket.on(event, (data: unknown) => events.push({ event, data }));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return {
    socket,
    events,
    subscribe: (s) => socket.timeout(30_000).emitWithAck('subscribe', s) as Promise<SubscribeAck>,
    async waitFor(pred, what, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(events)) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out waiting for ${what}; received: ${JSON.stringify(events).slice(0, 2000)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => socket.close(),
  };
}

/** The events of one process, split by kind. */
export function flowOf(events: Received[], id: string) {
  const mine = events.filter(
    (e) =>
      (e.event === 'process:updated' && e.data.id === id) ||
      (e.event === 'process:step' && e.data.processId === id),
  );
  return {
    all: mine,
    steps: mine.filter((e) => e.event === 'process:step').map((e) => e.data),
    statuses: mine.filter((e) => e.event === 'process:updated').map((e) => e.data.status as string),
  };
}

/**
 * Holds back step commits on `db` while `fn` runs: an EXCLUSIVE lock on process_steps blocks its
 * INSERTs (a runner's first commit waits) but not reads, so a test can subscribe to a process
 * before any of its steps can commit — without it, a fast process could finish first.
 */
export async function holdingStepCommits<T>(pool: pg.Pool, fn: () => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('LOCK TABLE orchestrator.process_steps IN EXCLUSIVE MODE');
    const result = await fn();
    await c.query('COMMIT');
    return result;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** Starts `workflow` and subscribes `live` to it before any of its steps commit. */
export async function startWatched(
  db: Pick<TestDatabase, 'pool'>,
  baseUrl: string,
  live: LiveClient[],
  workflow: string,
  input: unknown = {},
): Promise<string> {
  return holdingStepCommits(db.pool, async () => {
    const id = await client(baseUrl).start(workflow, input);
    for (const l of live) expect(await l.subscribe({ processId: id })).toEqual({ ok: true });
    return id;
  });
}

const step = (index: number, name: string, status: string) =>
  expect.objectContaining({ index, name, status });

/**
 * A real socket.io-client receives, in order, every step of `noop` and `hello` from start to
 * completed, with the API in this process in `executor`'s mode (in worker mode, with a worker
 * process; stopped with SIGTERM after the suite, it must exit cleanly). Call it inside a
 * `describe` (see describeBothModes).
 */
export function eventFlowSuite(executor: Executor): void {
  // The threadpool claims a new process in its insert when a slot is free: it starts `running`.
  // How a process's statuses begin: `running` (the threadpool claims it in its insert). In worker
  // mode it is inserted `created` and a worker claims it; the `created` event is relayed before
  // the client, which subscribes once the start answered, may be listening (no replay): seen or
  // not, depending on the machine's load, so it is not asked for.
  const start = ['running'];
  const fromClaim = (statuses: string[]) =>
    executor === 'worker' && statuses[0] === 'created' ? statuses.slice(1) : statuses;
  const h = useHarness({ executor, apiIn: 'here' });
  let live: LiveClient;

  beforeAll(async () => {
    live = await connectLive(h.url);
    expect(await live.subscribe({ room: 'processes' })).toEqual({ ok: true });
  });
  afterAll(async () => {
    live?.close();
    for (const worker of h.workers) expect(await terminate(worker)).toBe(0);
  });

  it('noop: every step, in order, then completed', async () => {
    const id = await startWatched(h.db, h.url, [live], 'noop');
    await live.waitFor(
      (ev) => flowOf(ev, id).statuses.includes('completed'),
      `noop ${id} completed`,
    );
    const flow = flowOf(live.events, id);
    expect(flow.steps).toEqual([
      step(0, 'One', 'success'),
      step(1, 'Two', 'success'),
      step(2, 'Three', 'success'),
    ]);
    expect(fromClaim(flow.statuses).slice(0, start.length)).toEqual(start);
    // The last step is announced before the status it led to, and nothing follows `completed`.
    expect(flow.all.at(-1)).toEqual({
      event: 'process:updated',
      data: expect.objectContaining({ id, status: 'completed', workflowName: 'noop' }),
    });
    expect(flow.all.at(-2)?.event).toBe('process:step');
    expect(flow.statuses.filter((s) => s === 'completed')).toHaveLength(1);
  });

  it('hello: steps up to the suspend, then after resume the rest, then completed', async () => {
    const id = await startWatched(h.db, h.url, [live], 'hello', { name: 'Ada' });
    await live.waitFor(
      (ev) => flowOf(ev, id).statuses.includes('suspended'),
      `hello ${id} suspended`,
    );
    expect(flowOf(live.events, id).steps).toEqual([
      step(0, 'Greet', 'success'),
      step(1, 'Confirm', 'suspend'),
    ]);
    const resumed = await client(h.url).put(`/api/processes/${id}/resume`, {
      confirmed: true,
    });
    expect(resumed.status).toBe(204);
    await live.waitFor(
      (ev) => flowOf(ev, id).statuses.includes('completed'),
      `hello ${id} completed`,
    );
    const flow = flowOf(live.events, id);
    expect(flow.steps).toEqual([
      step(0, 'Greet', 'success'),
      step(1, 'Confirm', 'suspend'),
      step(1, 'Confirm', 'success'),
      step(2, 'Finish', 'success'),
    ]);
    const order = fromClaim(flow.statuses).filter((s, i, all) => s !== all[i - 1]);
    expect(order).toEqual([...start, 'suspended', 'resumed', 'running', 'completed']);
    expect(flow.all.at(-1)?.data).toMatchObject({ status: 'completed', lastStep: 'Finish' });
  });
}

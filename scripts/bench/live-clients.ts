// One child process of live clients (item 5): `clients` socket.io clients subscribed to the
// `processes` room of the API at `url`, so that the measuring side is not one event loop handling
// every client's messages. Started by scripts/bench/live.ts with an IPC channel:
//
// - to the parent: `{ type: 'ready' }` once every client is subscribed, `{ type: 'error' }` when
//   one could not connect; while recording, `{ type: 'progress' }` with the events received, the
//   `completed` events among them and the latency samples (receive time − the event's
//   `lastModifiedAt`, ms) since the last message, at most one message per event-loop turn.
// - from the parent: `{ type: 'record', on }` starts or stops recording (without it the clients
//   still receive and parse every event, but nothing is sent; acknowledged with
//   `{ type: 'recording', on }`), `{ type: 'close' }` ends it.
import { io, type Socket } from 'socket.io-client';

export type ToParent =
  | { type: 'ready' }
  | { type: 'error'; message: string }
  | { type: 'recording'; on: boolean }
  | { type: 'progress'; received: number; completed: number; samples: number[] };
export type ToChild = { type: 'record'; on: boolean } | { type: 'close' };

/** Epoch ms of an ISO timestamp, keeping digits below the millisecond. */
export function parseTimestampMs(iso: string): number {
  const ms = Date.parse(iso);
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  return frac.length > 3 ? ms + Number(`0.${frac.slice(3)}`) : ms;
}

/** Wall-clock now in ms with sub-millisecond precision (comparable with Postgres's now()). */
const wallClockMs = () => performance.timeOrigin + performance.now();

/** Connects and subscribes to the process list; undefined when either fails in `timeoutMs`. */
export async function connectLive(url: string, timeoutMs: number): Promise<Socket | undefined> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, timeout: timeoutMs });
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('connect_error', () => resolve(false));
  });
  if (!ok) {
    socket.close();
    return undefined;
  }
  try {
    await socket.timeout(timeoutMs).emitWithAck('subscribe', { room: 'processes' });
    return socket;
  } catch {
    socket.close();
    return undefined;
  }
}

async function main(): Promise<void> {
  const [url, count] = process.argv.slice(2) as [string, string];
  const send = (m: ToParent) => process.send?.(m);
  const sockets: Socket[] = [];
  let recording = false;
  let received = 0;
  let completed = 0;
  let samples: number[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!recording) return;
    send({ type: 'progress', received, completed, samples });
    received = 0;
    completed = 0;
    samples = [];
  };
  process.on('message', (m: ToChild) => {
    if (m.type === 'record') {
      recording = m.on;
      received = 0;
      completed = 0;
      samples = [];
      send({ type: 'recording', on: m.on });
    } else if (m.type === 'close') {
      for (const s of sockets) s.close();
      process.disconnect();
    }
  });
  // The parent gone: nothing left to report to.
  process.on('disconnect', () => {
    for (const s of sockets) s.close();
    process.exit(0);
  });
  for (let i = 0; i < Number(count); i++) {
    const s = await connectLive(url, 10_000);
    if (!s) {
      send({ type: 'error', message: 'socket.io client could not connect and subscribe' });
      return;
    }
    s.on('process:updated', (e: { lastModifiedAt?: string; status?: string }) => {
      if (!recording) return;
      const at = wallClockMs();
      received++;
      if (e.status === 'completed') completed++;
      if (e.lastModifiedAt) samples.push(at - parseTimestampMs(e.lastModifiedAt));
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
    sockets.push(s);
  }
  send({ type: 'ready' });
}

if (process.send) await main();

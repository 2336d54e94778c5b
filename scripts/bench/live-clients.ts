// One child process of live clients (item 5): `clients` websocket clients subscribed to the
// `processes` room of the API at `url`, so that the measuring side is not one event loop handling
// every client's messages. Started by scripts/bench/live.ts with an IPC channel:
//
// - to the parent: `{ type: 'ready' }` once every client is subscribed, `{ type: 'error' }` when
//   one could not connect; while recording, `{ type: 'progress' }` with the events received, the
//   `completed` events among them and the latency samples (receive time − the event's
//   `lastModifiedAt`, ms) since the last message, at most one message per event-loop turn.
// - from the parent: `{ type: 'record', on }` starts or stops recording (without it the clients
//   still receive every event, but only count it; acknowledged with `{ type: 'recording', on }`),
//   `{ type: 'close' }` ends it.
//
// The clients speak the Engine.IO 4 / Socket.IO 5 wire protocol over `ws` themselves instead of
// running socket.io-client: on this machine the clients share the API's 2 cores, and 200
// socket.io-client instances decoding every packet cost more CPU than the API spent sending them
// (10.1 s against 9.1 s for 1,000 processes), which is the clients' cost, not the relay's. Each
// client still receives and frames every websocket message; it decodes an event's JSON only
// while recording (the latency runs, one process at a time).
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

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

/**
 * A websocket client subscribed to the process list through the Socket.IO wire protocol (EIO 4,
 * default namespace): connect, `40`, `420["subscribe",{"room":"processes"}]`, ack `430[{"ok":true}]`;
 * pings (`2`) are answered with `3`. Every later message goes to `onMessage` as it arrived.
 */
export async function connectCounting(
  url: string,
  timeoutMs: number,
  onMessage: (data: Buffer) => void,
): Promise<WebSocket | undefined> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const done = (v: boolean) => {
      clearTimeout(timer);
      resolve(v);
    };
    ws.on('error', () => done(false));
    ws.on('close', () => done(false));
    ws.on('message', (raw: Buffer) => {
      if (raw.length === 1 && raw[0] === 0x32) return ws.send('3');
      const m = raw.toString();
      if (m.startsWith('0{')) ws.send('40');
      else if (m.startsWith('40')) ws.send('420["subscribe",{"room":"processes"}]');
      else if (m.startsWith('430')) {
        done(m === '430[{"ok":true}]');
        ws.removeAllListeners('message');
        ws.on('message', (data: Buffer) => {
          if (data.length === 1 && data[0] === 0x32) ws.send('3');
          else onMessage(data);
        });
      }
    });
  });
  if (!ok) {
    ws.terminate();
    return undefined;
  }
  return ws;
}

async function main(): Promise<void> {
  const [url, count] = process.argv.slice(2) as [string, string];
  const send = (m: ToParent) => process.send?.(m);
  const sockets: WebSocket[] = [];
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
  const onMessage = (data: Buffer) => {
    // `42[...]`: a Socket.IO event; `2`: Engine.IO's ping (answered by the caller).
    if (!recording || data[0] !== 0x34 || data[1] !== 0x32) return;
    const at = wallClockMs();
    const [name, e] = JSON.parse(data.subarray(2).toString()) as [
      string,
      { lastModifiedAt?: string; status?: string },
    ];
    if (name !== 'process:updated') return;
    received++;
    if (e.status === 'completed') completed++;
    if (e.lastModifiedAt) samples.push(at - parseTimestampMs(e.lastModifiedAt));
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  for (let i = 0; i < Number(count); i++) {
    const s = await connectCounting(url, 10_000, onMessage);
    if (!s) {
      send({ type: 'error', message: 'websocket client could not connect and subscribe' });
      return;
    }
    sockets.push(s);
  }
  send({ type: 'ready' });
}

if (process.send) await main();

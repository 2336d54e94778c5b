// Item 5, live latency: step commit → `process:updated` received by socket.io clients subscribed
// to the `processes` room, with 1 and with 200 clients. The commit time is the event's own
// `lastModifiedAt` (Postgres's clock, microseconds kept), the same machine's clock as ours.
import { setTimeout as sleep } from 'node:timers/promises';
import { io, type Socket } from 'socket.io-client';
import { startProcess, wallClockMs } from './client.ts';
import { latencyRun, type LatencyRun } from './stats.ts';

/** Epoch ms of an ISO timestamp, keeping digits below the millisecond. */
export function parseTimestampMs(iso: string): number {
  const ms = Date.parse(iso);
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  return frac.length > 3 ? ms + Number(`0.${frac.slice(3)}`) : ms;
}

async function connect(url: string, timeoutMs: number): Promise<Socket | undefined> {
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

/** Whether the API serves live events (the live view may not be part of this build). */
export async function liveAvailable(url: string): Promise<boolean> {
  const s = await connect(url, 3_000);
  s?.close();
  return s !== undefined;
}

/** `runs` runs of `count` sequential `noop` processes watched by `clients` clients. */
export async function measureLiveLatency(
  url: string,
  opts: { clients: number; count: number; runs: number },
): Promise<LatencyRun[]> {
  const sockets: Socket[] = [];
  let samples: number[] = [];
  let received = 0;
  try {
    for (let i = 0; i < opts.clients; i++) {
      const s = await connect(url, 10_000);
      if (!s) throw new Error('socket.io client could not connect and subscribe');
      s.on('process:updated', (e: { lastModifiedAt?: string }) => {
        const at = wallClockMs();
        received++;
        if (e.lastModifiedAt) samples.push(at - parseTimestampMs(e.lastModifiedAt));
      });
      sockets.push(s);
    }
    const runs: LatencyRun[] = [];
    for (let run = -1; run < opts.runs; run++) {
      samples = [];
      for (let i = 0; i < opts.count; i++) {
        const before = received;
        await startProcess(url, 'noop', {});
        // Every client sees at least the completion; wait for it before the next process.
        const deadline = Date.now() + 30_000;
        while (received < before + opts.clients * 3 && Date.now() < deadline) await sleep(1);
      }
      if (run >= 0) runs.push(latencyRun(samples)); // run -1 warms up
    }
    return runs;
  } finally {
    for (const s of sockets) s.close();
  }
}

// Item 5, live latency: step commit → `process:updated` received by socket.io clients subscribed
// to the `processes` room, with 1 and with 200 clients. The commit time is the event's own
// `lastModifiedAt` (Postgres's clock, microseconds kept), the same machine's clock as ours. The
// clients live in child processes (scripts/bench/live-clients.ts, at most 50 per process), so the
// measuring side is not one event loop handling every client's messages.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startProcess } from './client.ts';
import { connectLive, type ToChild, type ToParent } from './live-clients.ts';
import { latencyRun, type LatencyRun } from './stats.ts';
import { root } from './system.ts';

export { parseTimestampMs } from './live-clients.ts';

/** Clients per child process. */
const CLIENTS_PER_PROCESS = 50;
const SCRIPT = path.join(root, 'scripts', 'bench', 'live-clients.ts');

/** CPU seconds (user + system) a process used so far, from /proc (Linux; NaN elsewhere). */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Whether the API serves live events (the live view may not be part of this build). */
export async function liveAvailable(url: string): Promise<boolean> {
  const s = await connectLive(url, 3_000);
  s?.close();
  return s !== undefined;
}

/** `clients` live clients spread over child processes; counts and samples arrive over IPC. */
export class LiveClients {
  readonly clients: number;
  private readonly children: ChildProcess[] = [];
  private acks: (() => void)[] = [];
  received = 0;
  completed = 0;
  samples: number[] = [];

  private constructor(clients: number) {
    this.clients = clients;
  }

  static async start(url: string, clients: number): Promise<LiveClients> {
    const live = new LiveClients(clients);
    const ready: Promise<void>[] = [];
    for (let left = clients; left > 0; left -= CLIENTS_PER_PROCESS) {
      const n = Math.min(CLIENTS_PER_PROCESS, left);
      const child = fork(SCRIPT, [url, String(n)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      live.children.push(child);
      ready.push(
        new Promise<void>((resolve, reject) => {
          child.on('message', (m: ToParent) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'error') reject(new Error(m.message));
            else if (m.type === 'recording') live.acks.shift()?.();
            else {
              live.received += m.received;
              live.completed += m.completed;
              for (const s of m.samples) live.samples.push(s);
            }
          });
          child.once('exit', (code) => reject(new Error(`live clients exited (${code})`)));
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await live.close();
      throw err;
    }
    return live;
  }

  /** Starts or stops recording (once every child has it); counts and samples start from zero. */
  async record(on: boolean): Promise<void> {
    const acked = Array.from(
      { length: this.children.length },
      () => new Promise<void>((resolve) => this.acks.push(resolve)),
    );
    for (const c of this.children)
      if (c.connected) c.send({ type: 'record', on } satisfies ToChild);
    const timeout = sleep(10_000).then(() => {
      throw new Error('live clients did not answer');
    });
    await Promise.race([Promise.all(acked), timeout]);
    this.received = 0;
    this.completed = 0;
    this.samples = [];
  }

  /** CPU seconds the client processes used so far. */
  cpuSeconds(): number {
    return this.children.reduce((sum, c) => sum + cpuSeconds(c.pid), 0);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, 'exit');
        if (c.connected) c.send({ type: 'close' } satisfies ToChild);
        const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}

/** `runs` runs of `count` sequential `noop` processes watched by the connected `live` clients. */
export async function measureLiveLatency(
  url: string,
  live: LiveClients,
  opts: { count: number; runs: number },
): Promise<LatencyRun[]> {
  const runs: LatencyRun[] = [];
  try {
    for (let run = -1; run < opts.runs; run++) {
      await live.record(true);
      for (let i = 0; i < opts.count; i++) {
        const before = live.completed;
        await startProcess(url, 'noop', {});
        // Wait until every client has seen this process completed before the next one.
        const deadline = Date.now() + 30_000;
        while (live.completed < before + live.clients && Date.now() < deadline) await sleep(1);
      }
      if (run >= 0) runs.push(latencyRun(live.samples)); // run -1 warms up
    }
    return runs;
  } finally {
    await live.record(false);
  }
}

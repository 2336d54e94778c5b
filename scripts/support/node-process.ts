// A node script run as a real child process from the repository root, with its output kept (the
// tail in memory, all of it in a log file when given): what the benchmark and the chaos suite
// start the API, workers and helpers with.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_FLAGS } from '../../src/config/node-flags.ts';

export const root = path.resolve(import.meta.dirname, '..', '..');

export class NodeProcess {
  readonly child: ChildProcess;
  output = '';
  /** Resolves with the exit code, or the signal's name, once the process ended. */
  readonly exited: Promise<number | string>;

  /** Starts `node <script> ...args`; `LOG_LEVEL` is `warn` unless `env` says otherwise. */
  constructor(
    script: string,
    args: string[],
    env: Record<string, string>,
    opts: { logFile?: string } = {},
  ) {
    this.child = spawn(process.execPath, [...NODE_FLAGS, script, ...args], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const { logFile } = opts;
    if (logFile) fs.appendFileSync(logFile, `--- start ${new Date().toISOString()}\n`);
    const append = (d: Buffer) => {
      if (logFile) fs.appendFileSync(logFile, d);
      this.output += d.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    this.child.stdout?.on('data', append);
    this.child.stderr?.on('data', append);
    this.exited = once(this.child, 'exit').then(
      ([code, signal]) => (code as number | null) ?? (signal as string),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until the output matches `ready` (fails when the process exits first or time runs out). */
  async waitFor(ready: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready.test(this.output)) {
      if (!this.running)
        throw new Error(`${what} exited while starting:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`${what} did not start:\n${this.output.slice(-3000)}`);
      await sleep(20);
    }
  }

  /** Peak resident set size so far, in MB (Linux only; NaN elsewhere). */
  peakRssMb(): number {
    try {
      const status = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) / 1024 : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }

  /**
   * Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. Resolves with the exit code
   * or signal name, or `timeout` when it had to be killed.
   */
  async kill(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<number | string> {
    if (!this.running) return 'not running';
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (r) => (timer = setTimeout(() => r('timeout'), timeoutMs)),
    );
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    return result;
  }

  /** Graceful stop: SIGTERM, SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<void> {
    await this.kill('SIGTERM', timeoutMs);
  }
}

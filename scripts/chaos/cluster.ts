// The system under test, as real processes: the API and worker processes, each of which can be
// killed, stopped and restarted (the database is an OwnCluster, see scripts/support/cluster.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..', '..');

/** One node process of the system (API or worker), restartable with the same arguments. */
export class Service {
  /** Folder where every service appends its output (one file per service, across restarts). */
  static logDir: string | undefined;
  /** Exits nobody asked for (a crash of the API or a worker): each one fails the run. */
  static readonly crashes: { name: string; code: number | string; output: string }[] = [];
  child: ChildProcess | undefined;
  #stopping = false;
  output = '';
  readonly name: string;
  readonly #script: string;
  readonly #args: string[];
  readonly #env: () => Record<string, string>;
  readonly #ready: RegExp;

  constructor(
    name: string,
    script: string,
    args: string[],
    env: () => Record<string, string>,
    ready: RegExp,
  ) {
    this.name = name;
    this.#script = script;
    this.#args = args;
    this.#env = env;
    this.#ready = ready;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Starts the process and waits for its ready line. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.output = '';
    const child = spawn(process.execPath, [this.#script, ...this.#args], {
      cwd: root,
      env: { ...process.env, ...this.#env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.#stopping = false;
    child.once('exit', (code, signal) => {
      if (!this.#stopping) {
        Service.crashes.push({
          name: this.name,
          code: code ?? signal ?? 'unknown',
          output: this.output.slice(-4000),
        });
      }
    });
    const logFile =
      Service.logDir && path.join(Service.logDir, `${this.name.replace(/\W+/g, '_')}.log`);
    if (logFile) fs.appendFileSync(logFile, `--- start ${new Date().toISOString()}\n`);
    const append = (d: Buffer) => {
      if (logFile) fs.appendFileSync(logFile, d);
      this.output += d.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const deadline = Date.now() + timeoutMs;
    while (!this.#ready.test(this.output)) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited while starting:\n${this.output.slice(-3000)}`);
      }
      if (Date.now() > deadline)
        throw new Error(`${this.name} did not start:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `signal` and waits for the exit; returns the exit code or signal name. */
  async kill(signal: NodeJS.Signals, timeoutMs = 60_000): Promise<number | string> {
    const child = this.child;
    if (!child || !this.running) return 'not running';
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    this.#stopping = true;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (r) => (timer = setTimeout(() => r('timeout'), timeoutMs)),
    );
    const result = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      await once(child, 'exit');
      return 'timeout';
    }
    return result[0] ?? result[1] ?? 'unknown';
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }
}

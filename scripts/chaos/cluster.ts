// The system under test, as real processes: the API and worker processes, each of which can be
// killed, stopped and restarted (the database is an OwnCluster, see scripts/support/cluster.ts).
import path from 'node:path';
import { NodeProcess, root } from '../support/node-process.ts';

export { root };

/** One node process of the system (API or worker), restartable with the same arguments. */
export class Service {
  /** Folder where every service appends its output (one file per service, across restarts). */
  static logDir: string | undefined;
  /** Exits nobody asked for (a crash of the API or a worker): each one fails the run. */
  static readonly crashes: { name: string; code: number | string; output: string }[] = [];
  /** When it was up (from its ready line to its exit), in ms since the epoch; `to` unset while up. */
  readonly uptime: { from: number; to?: number }[] = [];
  #proc: NodeProcess | undefined;
  #stopping = false;
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
    return this.#proc?.child.pid;
  }

  get running(): boolean {
    return this.#proc?.running ?? false;
  }

  /** What the current run printed (its tail). */
  get output(): string {
    return this.#proc?.output ?? '';
  }

  /** Starts the process and waits for its ready line. */
  async start(timeoutMs = 30_000): Promise<void> {
    const logFile =
      Service.logDir && path.join(Service.logDir, `${this.name.replace(/\W+/g, '_')}.log`);
    const proc = new NodeProcess(this.#script, this.#args, this.#env(), { logFile });
    this.#proc = proc;
    this.#stopping = false;
    void proc.exited.then((code) => {
      const last = this.uptime.at(-1);
      if (last && last.to === undefined) last.to = Date.now();
      if (!this.#stopping) {
        Service.crashes.push({ name: this.name, code, output: proc.output.slice(-4000) });
      }
    });
    await proc.waitFor(this.#ready, this.name, timeoutMs);
    if (proc.running) this.uptime.push({ from: Date.now() });
  }

  /** Sends `signal` and waits for the exit; returns the exit code or signal name. */
  async kill(signal: NodeJS.Signals, timeoutMs = 60_000): Promise<number | string> {
    if (!this.#proc || !this.running) return 'not running';
    this.#stopping = true;
    return this.#proc.kill(signal, timeoutMs);
  }

  signal(signal: NodeJS.Signals): void {
    this.#proc?.child.kill(signal);
  }
}

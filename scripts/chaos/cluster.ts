// The system under test, as real processes: an embedded Postgres this script owns (so it can be
// restarted), the API, and worker processes, each of which can be killed, stopped and restarted.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/config/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { freePort } from '../support/ports.ts';

export const root = path.resolve(import.meta.dirname, '..', '..');

/** A Postgres the suite can restart: embedded in a temporary folder. */
export class ChaosDatabase {
  url = '';
  #dir = '';
  #port = 0;
  #db: EmbeddedDatabase | undefined;

  async start(): Promise<void> {
    if (!this.#dir) {
      this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-chaos-'));
      fs.chmodSync(this.#dir, 0o755);
      this.#port = await freePort();
    }
    this.#db = await startEmbeddedPostgres({
      dataDir: this.#dir,
      port: this.#port,
      logger: silentLogger,
      postgresFlags: ['-c', 'max_connections=300'],
    });
    this.url = this.#db.connectionString;
    await runMigrations(this.url);
  }

  async stop(): Promise<void> {
    await this.#db?.stop();
    this.#db = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.#dir) fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

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

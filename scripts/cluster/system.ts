// The real processes on the simulated hosts: Debian's postgresql-15 on the Postgres host
// (listening on its address, pg_stat_statements loaded), the API (`src/cli/serve.ts`, worker mode)
// on each API host, `src/cli/worker.ts` on each worker host. Each component connects as a role of
// its own (keelson_api, keelson_worker), so pg_stat_statements counts their statements apart.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_FLAGS } from '../../src/config/node-flags.ts';
import { root } from '../support/node-process.ts';
import { runIn, spawnIn, type Host, type Topology } from './net.ts';

const PG_BIN = '/usr/lib/postgresql/15/bin';
export const PG_PORT = 5432;
export const API_PORT = 8080;
export const DB_NAME = 'keelson';
export const benchWorkflows = path.join(root, 'scripts', 'bench', 'workflows');

/** A process on a host: restartable, killable (the whole process group), its output in a file. */
export class HostProcess {
  child: ChildProcess | undefined;
  readonly log: string;
  #output = '';
  readonly name: string;
  readonly host: Host;
  readonly #cmd: string;
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #ready: RegExp;
  constructor(
    o: {
      name: string;
      host: Host;
      cmd: string;
      args: string[];
      env: Record<string, string>;
      ready: RegExp;
    },
    dir: string,
  ) {
    this.name = o.name;
    this.host = o.host;
    this.#cmd = o.cmd;
    this.#args = o.args;
    this.#env = o.env;
    this.#ready = o.ready;
    this.log = path.join(dir, `${o.name}.log`);
  }
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }
  async start(timeoutMs = 60_000): Promise<void> {
    this.#output = '';
    const child = spawnIn(this.host, this.#cmd, this.#args, { env: this.#env, cwd: root });
    this.child = child;
    const append = (d: Buffer) => {
      fs.appendFileSync(this.log, d);
      this.#output += d.toString();
      if (this.#output.length > 100_000) this.#output = this.#output.slice(-50_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const deadline = Date.now() + timeoutMs;
    while (!this.#ready.test(this.#output)) {
      if (!this.running)
        throw new Error(`${this.name} exited while starting:\n${this.#output.slice(-2000)}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name} did not start:\n${this.#output.slice(-2000)}`);
      await sleep(50);
    }
  }
  /** Counts lines of its output (this run) matching `re`. */
  count(re: RegExp): number {
    return fs.existsSync(this.log)
      ? fs
          .readFileSync(this.log, 'utf8')
          .split('\n')
          .filter((l) => re.test(l)).length
      : 0;
  }
  kill(signal: NodeJS.Signals): void {
    try {
      if (this.child?.pid) process.kill(-this.child.pid, signal);
    } catch {
      // gone
    }
  }
  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child!, 'exit');
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
  /** The pid of the node or postgres process itself (under `ip netns exec`, which execs it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }
}

export interface System {
  dir: string;
  postgres: HostProcess;
  apis: HostProcess[];
  workers: HostProcess[];
  /** The bench's own URL (superuser postgres). */
  dbUrl: string;
  apiUrls: string[];
  stop(): Promise<void>;
}

const url = (t: Topology, user: string) => `postgres://${user}@${t.pg.ip}:${PG_PORT}/${DB_NAME}`;

export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(PG_BIN, 'postgres'));
}

/** Starts Postgres, the APIs and the workers on their hosts. */
export async function startSystem(
  t: Topology,
  opts: { leaseSeconds?: number; concurrency?: number } = {},
): Promise<System> {
  if (!postgresAvailable())
    throw new Error(`needs Debian's postgresql-15 (${PG_BIN}): apt-get install -y postgresql-15`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-cluster-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'pg');
  fs.mkdirSync(data);
  fs.chownSync(data, uidOf('postgres'), gidOf('postgres'));
  const asPostgres = (bin: string, ...a: string[]) =>
    runIn(t.pg, 'runuser', '-u', 'postgres', '--', `${PG_BIN}/${bin}`, ...a);
  asPostgres('initdb', '-D', data, '--auth=trust', '-U', 'postgres');
  fs.appendFileSync(path.join(data, 'pg_hba.conf'), `host all all ${t.pg.ip}/24 trust\n`);
  const settings = {
    listen_addresses: t.pg.ip,
    port: String(PG_PORT),
    unix_socket_directories: data,
    shared_preload_libraries: 'pg_stat_statements',
    max_connections: '300',
  };
  const postgres = new HostProcess(
    {
      name: 'postgres',
      host: t.pg,
      cmd: 'runuser',
      args: ['-u', 'postgres', '--', `${PG_BIN}/postgres`, '-D', data].concat(
        Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ),
      env: {},
      ready: /ready to accept connections/,
    },
    dir,
  );
  await postgres.start();
  const psql = (sql: string, db = 'postgres') =>
    asPostgres(
      'psql',
      '-h',
      data,
      '-p',
      String(PG_PORT),
      '-d',
      db,
      '-v',
      'ON_ERROR_STOP=1',
      '-qAtc',
      sql,
    );
  psql(`CREATE DATABASE ${DB_NAME}`);
  psql('CREATE ROLE keelson_api SUPERUSER LOGIN; CREATE ROLE keelson_worker SUPERUSER LOGIN');
  psql('CREATE EXTENSION pg_stat_statements', DB_NAME);
  const common = {
    WORKFLOWS_DIR: benchWorkflows,
    LOG_LEVEL: 'info',
    ...(opts.leaseSeconds ? { LEASE_SECONDS: String(opts.leaseSeconds) } : {}),
  };
  const apis = t.apis.map(
    (h) =>
      new HostProcess(
        {
          name: h.name,
          host: h,
          cmd: process.execPath,
          args: [...NODE_FLAGS, 'src/cli/serve.ts'],
          env: {
            ...common,
            DATABASE_URL: url(t, 'keelson_api'),
            EXECUTOR: 'worker',
            HOST: h.ip,
            PORT: String(API_PORT),
            AUTH: 'none',
          },
          ready: /orchestrator listening/,
        },
        dir,
      ),
  );
  const workers = t.workers.map(
    (h) =>
      new HostProcess(
        {
          name: h.name,
          host: h,
          cmd: process.execPath,
          args: [
            ...NODE_FLAGS,
            'src/cli/worker.ts',
            '--concurrency',
            String(opts.concurrency ?? 16),
          ],
          env: { ...common, DATABASE_URL: url(t, 'keelson_worker') },
          ready: /worker ready/,
        },
        dir,
      ),
  );
  // The first API migrates; the others start once it did.
  await apis[0]!.start();
  await Promise.all([...apis.slice(1), ...workers].map((p) => p.start()));
  return {
    dir,
    postgres,
    apis,
    workers,
    dbUrl: url(t, 'postgres'),
    apiUrls: t.apis.map((h) => `http://${h.ip}:${API_PORT}`),
    async stop() {
      await Promise.all([...workers, ...apis].map((p) => p.stop()));
      await postgres.stop();
    },
  };
}

function idOf(flag: '-u' | '-g', name: string): number {
  return Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
}
const uidOf = (name: string) => idOf('-u', name);
const gidOf = (name: string) => idOf('-g', name);

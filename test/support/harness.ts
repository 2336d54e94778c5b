// One harness for the test files: a database cloned from the migrated template (or an empty one,
// or a cluster of the file's own), the API or the engine in either executor, a REST client, and
// at the end everything closed, the invariants checked and the database dropped — kept, with its
// name printed, when a test of the suite failed. `describeBothModes` runs a suite once per executor.
//
//   const h = useHarness({ executor: 'threadpool' });
//   it('…', async () => { const id = await h.http.start('noop'); … h.db.pool.query(…) … });
//
// Called at the top of a file it serves the whole file; inside a `describe`, that block.
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject } from 'vitest';
import type { OwnCluster } from '../../scripts/support/cluster.ts';
import { randomBytes } from 'node:crypto';
import { cloneDatabase, withClient, withDatabase } from '../../src/db/templates.ts';
import { checkInvariants, type KnownWorkflows } from '../../src/db/testkit/invariants.ts';
import { loadRegistry } from '../../src/engine/registry.ts';
import type { Orchestrator } from '../../src/server.ts';
import { client, startApi } from './api.ts';
import type { TestDatabase } from './database.ts';
import { root } from './paths.ts';
import { killAll, type Spawned } from './spawn.ts';
import { startWorkerModeApi, startWorkerProcess, terminate } from './workers.ts';

export type Executor = 'threadpool' | 'worker';
export const EXECUTORS: readonly Executor[] = ['threadpool', 'worker'];

export type Http = ReturnType<typeof client>;
type Env = Record<string, string>;

export interface HarnessOptions {
  /**
   * What runs the processes: `threadpool` (the API in this process, STEP_THREADS=2) or `worker`
   * (the API with EXECUTOR=worker and `workers` real worker processes). None: a database only.
   */
  executor?: Executor;
  /**
   * Worker mode: where the API runs. `process` (default): a child process, as `npm start`
   * runs it; `here`: in this process (`h.api` is then available). The threadpool's is always here.
   */
  apiIn?: 'process' | 'here';
  /** The API's and the workers' environment (e.g. WORKFLOWS_DIR); a function is read in beforeAll. */
  env?: Env | (() => Env);
  /** Worker mode: how many worker processes start with the API (default 1). */
  workers?: number;
  /** Worker mode: their arguments (default none, e.g. `['--concurrency', '4']`). */
  workerArgs?: string[];
  /**
   * `clone` (default): a clone of the migrated template. `empty`: an empty database, nothing
   * migrated. An `OwnCluster`: that cluster's database (started here, destroyed at the end), for
   * files that stop and restart their Postgres.
   */
  database?: 'clone' | 'empty' | OwnCluster;
  /**
   * Check the invariants (src/db/testkit/invariants.ts) once everything is closed. Default: on
   * when an executor runs, with its workflows (the API's registry, or WORKFLOWS_DIR's) and, in
   * worker mode, `checkJobs`. `false` for files that leave inconsistent rows on purpose.
   */
  invariants?:
    boolean | { registry?: () => KnownWorkflows | Promise<KnownWorkflows>; checkJobs?: boolean };
}

export interface Harness {
  readonly executor: Executor | undefined;
  /** The suite's database: url, name and a small pool for assertions. */
  readonly db: Pick<TestDatabase, 'url' | 'name' | 'pool'>;
  /** The API running in this process (threadpool, or worker mode with `apiIn: 'here'`). */
  readonly api: Orchestrator;
  /** The worker-mode API's child process (`apiIn: 'process'`). */
  readonly apiProcess: Spawned;
  /** The API's base URL. */
  readonly url: string;
  /** A REST client of the API. */
  readonly http: Http;
  /** The worker processes started with the API (worker mode) and by `startWorker`. */
  readonly workers: Spawned[];
  /** A second clone of the template, for a test that needs a database untouched by the suite. */
  otherDatabase(): Promise<Pick<TestDatabase, 'url' | 'name' | 'pool'>>;
  /** One more API in this process on the suite's database; closed at the end unless closed before. */
  startApi(env?: Env): Promise<Orchestrator>;
  /** One more worker-mode API as a child process; killed at the end. */
  startWorkerModeApi(env?: Env): ReturnType<typeof startWorkerModeApi>;
  /** One more worker process on the suite's database (not given the harness's env); killed at the end. */
  startWorker(args?: string[], env?: Env): Promise<Spawned>;
  /** Stops the suite's API, runs `whileDown`, starts it again: `api`, `url` and `http` follow. */
  restartApi(whileDown?: () => Promise<void>): Promise<void>;
}

/** The default workflows, or the fixtures' of `env.WORKFLOWS_DIR`. */
export const workflowsOf = (env: Env) => env.WORKFLOWS_DIR ?? `${root}/workflows`;

export function useHarness(options: HarnessOptions = {}): Harness {
  const { executor } = options;
  const apiHere = executor === 'threadpool' || options.apiIn === 'here';
  let env: Env = {};
  let db: Database | undefined;
  const others: Database[] = [];
  let api: Orchestrator | undefined;
  let apiProcess: Spawned | undefined;
  let url: string | undefined;
  let http: Http | undefined;
  const workers: Spawned[] = [];
  const apis = new Set<Orchestrator>();
  let failed = false;

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined)
      throw new Error(`the harness has no ${what} (not started, or not in these options)`);
    return value;
  };
  const dbUrl = () => ready(db, 'database').url;

  /** An API in this process whose close() forgets it. */
  async function trackedApi(e: Env): Promise<Orchestrator> {
    const o = await startApi(dbUrl(), e);
    apis.add(o);
    const close = o.close.bind(o);
    o.close = (timeoutMs?: number) => {
      apis.delete(o);
      return close(timeoutMs);
    };
    return o;
  }

  async function startMainApi(): Promise<void> {
    if (apiHere) {
      api = await trackedApi(executor === 'worker' ? { EXECUTOR: 'worker', ...env } : env);
      url = api.url;
    } else {
      const started = await startWorkerModeApi(dbUrl(), env);
      apiProcess = started.api;
      url = `http://127.0.0.1:${started.port}`;
    }
    http = client(url);
  }

  async function openDatabase(): Promise<Database> {
    const source = options.database ?? 'clone';
    if (source === 'clone') return clonedDatabase();
    if (source === 'empty') {
      const adminUrl = inject('adminUrl');
      const name = `empty_${randomBytes(6).toString('hex')}`;
      await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
      return databaseAt(withDatabase(adminUrl, name), name, () =>
        withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
      );
    }
    const cluster = source;
    if (!cluster.running) await cluster.start();
    const name = new URL(cluster.url).pathname.slice(1);
    // Kept: stopped, its folder left in the temporary directory.
    return databaseAt(
      cluster.url,
      name,
      () => cluster.destroy(),
      () => cluster.stop(),
    );
  }

  beforeAll(async () => {
    env = typeof options.env === 'function' ? options.env() : (options.env ?? {});
    db = await openDatabase();
    if (!executor) return;
    await startMainApi();
    if (executor === 'worker') {
      for (let i = 0; i < (options.workers ?? 1); i++)
        workers.push(await startWorkerProcess(dbUrl(), options.workerArgs ?? [], env));
    }
  });

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      failed = true;
    });
  });

  // eslint-disable-next-line no-empty-pattern -- vitest passes the suite second, after a fixture object
  afterAll(async ({}, suite) => {
    failed ||= hasFailure(suite);
    // In-process APIs close gracefully (their running processes handed back), the last started
    // first; child processes are killed.
    const closeErrors: unknown[] = [];
    for (const o of [...apis].reverse()) await o.close().catch((err) => closeErrors.push(err));
    await killAll();
    if (!db) return;
    let violations: unknown[] = [];
    const dbs = [db, ...others];
    try {
      const check = invariantOptions();
      if (check && !failed) {
        violations = await checkInvariants(db.pool, {
          registry: await check.registry(),
          checkJobs: check.checkJobs,
        });
      }
    } finally {
      const keep = failed || violations.length > 0;
      for (const d of dbs) {
        await d.pool.end();
        if (!keep) {
          await d.drop();
          continue;
        }
        await d.keep?.();
        console.error(
          `[harness] kept the database ${d.name} for inspection (${redact(d.url)}): ` +
            (failed ? 'a test of this suite failed' : 'the invariants do not hold'),
        );
      }
    }
    expect(violations).toEqual([]);
    if (closeErrors.length > 0) throw closeErrors[0];
  });

  function invariantOptions() {
    const o = options.invariants ?? executor !== undefined;
    if (o === false) return undefined;
    const given = o === true ? {} : o;
    return {
      registry:
        given.registry ?? (() => (api ? api.engine.registry : loadRegistry(workflowsOf(env)))),
      checkJobs: given.checkJobs ?? executor === 'worker',
    };
  }

  return {
    executor,
    get db() {
      return ready(db, 'database');
    },
    get api() {
      return ready(api, 'API in this process');
    },
    get apiProcess() {
      return ready(apiProcess, 'API process');
    },
    get url() {
      return ready(url, 'API');
    },
    get http() {
      return ready(http, 'API');
    },
    workers,
    startApi: (e: Env = {}) => trackedApi(e),
    async otherDatabase() {
      const other = await clonedDatabase();
      others.push(other);
      return other;
    },
    startWorkerModeApi: (e: Env = {}) => startWorkerModeApi(dbUrl(), e),
    async startWorker(args: string[] = [], e: Env = {}) {
      const w = await startWorkerProcess(dbUrl(), args, e);
      workers.push(w);
      return w;
    },
    async restartApi(whileDown) {
      if (api) await api.close();
      if (apiProcess) await terminate(apiProcess);
      api = apiProcess = url = http = undefined;
      await whileDown?.();
      await startMainApi();
    },
  };
}

/**
 * Runs `fn` once per executor, each in its own `describe` (`name (threadpool)`, `name (worker)`);
 * `fn` gets the executor and typically calls `useHarness({ executor, … })`.
 */
export function describeBothModes(name: string, fn: (executor: Executor) => void): void {
  for (const executor of EXECUTORS) describe(`${name} (${executor})`, () => fn(executor));
}

/** A database of the suite: `drop` removes it (its pool already ended), `keep` leaves it for inspection. */
interface Database extends Pick<TestDatabase, 'url' | 'name' | 'pool'> {
  drop(): Promise<void>;
  keep?(): Promise<void>;
}

function databaseAt(
  url: string,
  name: string,
  drop: () => Promise<unknown>,
  keep?: () => Promise<void>,
): Database {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  return {
    url,
    name,
    pool,
    async drop() {
      await drop();
    },
    keep,
  };
}

async function clonedDatabase(): Promise<Database> {
  const clone = await cloneDatabase(inject('adminUrl'));
  return databaseAt(clone.url, clone.name, () => clone.drop());
}

interface TaskLike {
  result?: { state?: string };
  tasks?: readonly TaskLike[];
}
/** Whether the suite, one of its hooks or one of its tests failed. */
function hasFailure(task: TaskLike): boolean {
  return task.result?.state === 'fail' || (task.tasks ?? []).some(hasFailure);
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, '//');

/**
 * Deletes every schedule (a deleted default is not installed again) and the processes they
 * started: for tests that count processes, which a tick in their middle would add to.
 */
export async function deleteSchedules(h: Pick<Harness, 'http' | 'db'>): Promise<void> {
  const schedules = (await h.http.get('/api/schedules')).body as { name: string }[];
  for (const s of schedules) {
    const r = await h.http.call('DELETE', `/api/schedules/${encodeURIComponent(s.name)}`);
    if (r.status !== 204) throw new Error(`could not delete schedule ${s.name}: ${r.status}`);
  }
  await h.db.pool.query(`DELETE FROM orchestrator.processes WHERE schedule_name IS NOT NULL`);
}

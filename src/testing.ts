// The test kit for workflow authors: a real engine on a real Postgres, with the steps running in
// the test's own thread. Works with any test runner (vitest, node:test, …): nothing here imports
// one.
//
//   const t = await createTestEngine({ workflows: [hello] });
//   const p = await t.run('hello', { name: 'Ada' });   // returns once the process stops moving
//   expect(p.status).toBe('suspended');
//   await t.close();
//
// What runs is the engine's own: createEngine, the threadpool executor with its runner (claims,
// leases, step rows and transitions committed as in production) and the timekeeper; only the
// step pool is replaced by one that calls the step definitions given here, in this thread.
//
// Postgres: `databaseUrl` or DATABASE_URL when set (a server on which the kit may create
// databases), else an embedded Postgres started once per process in a temporary folder on a free
// port, by a small keeper process that stops it and removes the folder when this process exits
// (however it exits). Each test engine gets a fresh database cloned from a migrated template
// (migrated once per server and schema version), dropped by `close`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { silentLogger, type Logger } from './config/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.ts';
import type { Publish } from './db/events.ts';
import { createPool, type Pool } from './db/pool.ts';
import { getStepRows, type StepRow } from './db/processes.ts';
import { cloneDatabase } from './db/templates.ts';
import { makeRetriesDue, processTree } from './db/testkit/statements.ts';
import type { Actor } from './engine/actor.ts';
import type { WorkflowDefinition } from './engine/dsl.ts';
import { createEngine, type Engine } from './engine/engine.ts';
import { NotFoundError } from './engine/errors.ts';
import { createRegistry, type Registry } from './engine/registry.ts';
import { runStepTask } from './engine/run-step.ts';
import { callbackPath } from './engine/runner.ts';
import { StepAbandonedError, type StepPool } from './engine/step-pool.ts';
import { createTimekeeper } from './engine/timekeeper.ts';
import type { ProcessStatus } from './engine/types.ts';
import { createThreadpoolExecutor } from './executors/threadpool.ts';

/** A process as `GET /api/processes/:id` returns it (with its steps, form, callback, locks). */
export type TestProcess = Awaited<ReturnType<Engine['getProcess']>>;
export type { Actor, StepRow };
export { OrchestratorError } from './engine/errors.ts';

export interface TestEngineOptions {
  /** The workflows to register (their definitions, e.g. the default exports of workflow files). */
  workflows: readonly WorkflowDefinition[];
  /**
   * A Postgres server on which the kit may create databases (a connection string to any
   * database of it). Default: DATABASE_URL, else an embedded Postgres.
   */
  databaseUrl?: string;
  /** Who starts, resumes and aborts processes unless a call says otherwise. Default `test`. */
  user?: string | Actor;
  /**
   * Whether waiting processes also continue by themselves when their retry or wake-up time comes,
   * as in production. Default false: only `advanceRetries` runs them, so that what a test sees
   * does not depend on how fast it runs. Callback timeouts are enforced either way.
   */
  timedRetries?: boolean;
  /** The base of the callback URLs steps are handed (`ctx.callbackUrl`). Default: the path alone. */
  publicUrl?: string;
  /** How long `run`, `resume`, `callback` and `advanceRetries` wait for processes to stop moving. Default 10 s. */
  waitMs?: number;
  /** After an abort, how long a step may take to notice before it is abandoned. Default 1000 ms. */
  abortGraceMs?: number;
  leaseSeconds?: number;
  /** Default: errors only (a step's outcome is in its process, not in the log), on stderr. */
  logger?: Logger;
}

/** Who acts, for one call: a user name, or an actor with roles and claims (authorization hooks). */
export interface ActAs {
  user?: string | Actor;
}

export interface TestEngine {
  /** The engine itself, for anything the kit does not wrap (lists, notes, the global lock, …). */
  engine: Engine;
  /** A pool on the test database, for assertions in SQL. */
  pool: Pool;
  /** The test database's connection string. */
  databaseUrl: string;
  /** Starts a process and returns it once it stops moving (completed, suspended, waiting, failed, …). */
  run(workflow: string | WorkflowDefinition, input?: unknown, as?: ActAs): Promise<TestProcess>;
  /** Starts a process and returns its id at once (see `wait`). */
  start(workflow: string | WorkflowDefinition, input?: unknown, as?: ActAs): Promise<string>;
  /** Returns the process once it stops moving. */
  wait(id: string): Promise<TestProcess>;
  /** Resumes a process (an input step's input, or nothing to retry) and returns it once it stops moving. */
  resume(id: string, input?: unknown, as?: ActAs): Promise<TestProcess>;
  /** Answers the callback the process was handed last, as its job would, and returns it once it stops moving. */
  callback(id: string, payload: unknown): Promise<TestProcess>;
  /** Posts interim progress to the process's pending callback. */
  callbackProgress(id: string, progress: unknown): Promise<TestProcess>;
  /** The callback URL the process was handed last (undefined if none). */
  callbackUrl(id: string): string | undefined;
  /**
   * Makes every waiting process that has a time (a retry step's next attempt, a sleep's
   * wake-up) due now, runs them and returns them once they stop moving.
   */
  advanceRetries(): Promise<TestProcess[]>;
  /** Aborts a process and returns it. */
  abort(id: string, as?: ActAs): Promise<TestProcess>;
  /** The process now. */
  get(id: string): Promise<TestProcess>;
  /** The process's step rows, in order. */
  steps(id: string): Promise<StepRow[]>;
  /** Stops the engine and drops the test database. */
  close(): Promise<void>;
}

/** What the engine logs as an error (a run that broke off, not a step's failure), on stderr. */
const errorsOnly: Logger = {
  ...silentLogger,
  error: (msg, fields) => console.error(`orchestrator test engine: ${msg}`, fields ?? ''),
  child: () => errorsOnly,
};

/** Statuses of a process on its way to a runner or in one. */
const MOVING: readonly ProcessStatus[] = ['created', 'running', 'resumed'];

const actorOf = (user: string | Actor): Actor =>
  typeof user === 'string' ? { name: user, roles: [], claims: {} } : user;

/** Steps run here, in this thread, with the same context and outcome as on the step pool. */
function inProcessStepPool(registry: Registry, abortGraceMs: number): StepPool {
  return {
    async run(task, signal) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      // A step that ignores its abort is abandoned after the grace period, as on the pool.
      const abandoned = new Promise<never>((_, reject) => {
        onAbort = () => {
          timer = setTimeout(
            () => reject(new StepAbandonedError(`step ignored its abort for ${abortGraceMs} ms`)),
            abortGraceMs,
          );
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      abandoned.catch(() => undefined);
      try {
        // Copies both ways, as across a thread: a step never shares objects with the runner.
        const outcome = await Promise.race([
          runStepTask(registry, structuredClone(task), signal),
          abandoned,
        ]);
        return structuredClone(outcome);
      } finally {
        clearTimeout(timer);
        if (onAbort) signal.removeEventListener('abort', onAbort);
      }
    },
    close: async () => {},
  };
}

// ---------------------------------------------------------------------------------------------
// Postgres

const KEEPER_FLAG = '--orchestrator-test-postgres';
const POSTGRES_FLAGS = [
  '-c',
  'fsync=off',
  '-c',
  'synchronous_commit=off',
  '-c',
  'full_page_writes=off',
  '-c',
  'max_connections=200',
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The keeper (this file run with KEEPER_FLAG): starts an embedded Postgres in a temporary folder,
 * prints its connection string, and when its parent goes (its stdin closes) stops it and removes
 * the folder.
 */
async function keepPostgres(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-testkit-'));
  // As root, Postgres runs as the user `postgres`, which must enter the folder.
  fs.chmodSync(dir, 0o755);
  const starting = (async (): Promise<EmbeddedDatabase> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const port = await freePort();
        return await startEmbeddedPostgres({
          dataDir: dir,
          port,
          logger: silentLogger,
          postgresFlags: POSTGRES_FLAGS,
        });
      } catch (err) {
        // The port may have been taken between the look and the bind.
        if (attempt >= 3) throw err;
      }
    }
  })();
  let stopping: Promise<void> | undefined;
  const stop = (code: number) =>
    (stopping ??= (async () => {
      await starting.then((db) => db.stop()).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(code);
    })());
  process.stdin.on('end', () => void stop(0));
  process.stdin.on('close', () => void stop(0));
  process.stdin.resume();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => void stop(0));
  try {
    const db = await starting;
    process.stdout.write(`${JSON.stringify({ connectionString: db.connectionString })}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    await stop(1);
  }
}

/** Starts the keeper and waits for its Postgres; nothing of it keeps this process alive. */
function startKeeper(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), KEEPER_FLAG], {
      // Its own process group: a Ctrl-C here reaches it as the end of its stdin, after which it
      // stops Postgres and cleans up.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const fail = (why: string) =>
      reject(new Error(`The test kit's embedded Postgres did not start: ${why}\n${err}`.trim()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => fail(e.message));
    child.once('exit', (code) => fail(`its keeper exited with code ${code}`));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        child.removeAllListeners('exit');
        child.stdout.destroy();
        child.stderr.destroy();
        // Its stdin stays open until this process exits: that end is the keeper's signal.
        (child.stdin as unknown as net.Socket).unref();
        child.unref();
        try {
          resolve((JSON.parse(line) as { connectionString: string }).connectionString);
        } catch {
          fail(`unexpected output ${JSON.stringify(line)}`);
        }
      }
    });
  });
}

let embedded: Promise<string> | undefined;

/** A fresh, migrated database; returns its connection string and how to drop it. */
async function createDatabase(server: string | undefined) {
  return cloneDatabase(await (server ?? (embedded ??= startKeeper())), 'testkit');
}

// ---------------------------------------------------------------------------------------------
// The test engine

export async function createTestEngine(options: TestEngineOptions): Promise<TestEngine> {
  const definitions = [...options.workflows];
  const seen = new Set<string>();
  for (const def of definitions) {
    if (def?.kind !== 'workflow')
      throw new TypeError('createTestEngine: workflows must be workflow({...}) definitions');
    if (seen.has(def.name))
      throw new Error(`createTestEngine: duplicate workflow name ${JSON.stringify(def.name)}`);
    seen.add(def.name);
  }
  const registry = createRegistry(definitions);
  const logger = options.logger ?? errorsOnly;
  const leaseSeconds = options.leaseSeconds ?? 30;
  const waitMs = options.waitMs ?? 10_000;
  const defaultActor = actorOf(options.user ?? 'test');
  const actor = (as?: ActAs) => (as?.user === undefined ? defaultActor : actorOf(as.user));

  const database = await createDatabase(options.databaseUrl ?? process.env.DATABASE_URL);
  const pool = createPool({
    connectionString: database.url,
    max: 10,
    logger,
    applicationName: 'orchestrator-testkit',
  });

  // Every committed change is published: waiters look again then (and every 25 ms anyway).
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  const publish: Publish = Object.assign(() => wake(), { missed: wake });

  // The token of the callback each process was handed last: what its job would post to.
  const tokens = new Map<string, string>();
  const base = (options.publicUrl ?? '').replace(/\/$/, '');
  const urlOf = (id: string, token: string) => base + callbackPath(id, token);

  const steps = inProcessStepPool(registry, options.abortGraceMs ?? 1_000);
  const later: { launch?: (ids: string[]) => void } = {};
  const timekeeper = createTimekeeper({
    pool,
    publish,
    logger,
    ...(options.timedRetries ? { retryDue: (ids: string[]) => later.launch?.(ids) } : {}),
  });
  const executor = createThreadpoolExecutor({
    pool,
    registry,
    steps,
    leaseSeconds,
    logger,
    publish,
    callbackUrl(id, token) {
      tokens.set(id, token);
      return urlOf(id, token);
    },
    onDue: (_id, at) => timekeeper.hint(at),
  });
  later.launch = (ids) => executor.launch(ids);
  const engine = createEngine({ pool, registry, dispatcher: executor.dispatcher, logger, publish });
  await executor.start();
  timekeeper.start();

  /**
   * Waits until none of `ids` and of their child processes (subProcesses), and theirs, is moving
   * (on its way to a runner or in one; a process queued for resource keys is not). `dueAt`: a waiting process whose retry is still due at that time (it
   * was set so) has yet to run; one that ran and waits again has another.
   */
  async function settle(ids: readonly string[], dueAt?: Date): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      let woken: () => void = () => undefined;
      const wakeUp = new Promise<void>((r) => (woken = r));
      waiters.add(woken);
      try {
        const rows = await processTree(pool, ids);
        const moving = rows.filter(
          (r) =>
            (MOVING.includes(r.status) && !(r.status === 'created' && r.queued)) ||
            (dueAt !== undefined &&
              r.status === 'waiting' &&
              r.retryAt?.getTime() === dueAt.getTime()),
        );
        if (moving.length === 0) return;
        if (Date.now() > deadline) {
          const which = moving.map((r) => `${r.id} (${r.status})`).join(', ');
          throw new Error(`Processes still moving after ${waitMs} ms: ${which}`);
        }
        await Promise.race([wakeUp, delay(25)]);
      } finally {
        waiters.delete(woken);
      }
    }
  }

  const settled = async (id: string) => {
    await settle([id]);
    return engine.getProcess(id);
  };

  async function start(workflow: string | WorkflowDefinition, input?: unknown, as?: ActAs) {
    const name = typeof workflow === 'string' ? workflow : workflow.name;
    const { id } = await engine.startProcess(name, input ?? {}, actor(as));
    return id;
  }

  const tokenOf = (id: string) => {
    const token = tokens.get(id);
    if (token === undefined)
      throw new NotFoundError(
        'callback_not_found',
        `Process ${id} was not handed a callback by this test engine`,
      );
    return token;
  };

  let closing: Promise<void> | undefined;
  return {
    engine,
    pool,
    databaseUrl: database.url,
    start,
    async run(workflow, input, as) {
      return settled(await start(workflow, input, as));
    },
    wait: settled,
    async resume(id, input, as) {
      await engine.resumeProcess(id, input ?? {}, actor(as));
      return settled(id);
    },
    async callback(id, payload) {
      await engine.answerCallback(id, tokenOf(id), payload);
      return settled(id);
    },
    async callbackProgress(id, progress) {
      await engine.callbackProgress(id, tokenOf(id), progress);
      return engine.getProcess(id);
    },
    callbackUrl(id) {
      const token = tokens.get(id);
      return token === undefined ? undefined : urlOf(id, token);
    },
    async advanceRetries() {
      const rows = await makeRetriesDue(pool);
      if (rows.length === 0) return [];
      const ids = rows.map((r) => r.id);
      executor.launch(ids);
      await settle(ids, rows[0]!.retryAt);
      return Promise.all(ids.map((id) => engine.getProcess(id)));
    },
    async abort(id, as) {
      await engine.abortProcess(id, actor(as));
      return settled(id);
    },
    get: (id) => engine.getProcess(id),
    steps: (id) => getStepRows(pool, id),
    close() {
      closing ??= (async () => {
        await timekeeper.stop();
        await executor.stop(5_000);
        await steps.close();
        await pool.end();
        await database.drop();
      })();
      return closing;
    },
  };
}

// This file run by node with KEEPER_FLAG is the keeper of the embedded Postgres.
if (
  process.argv[2] === KEEPER_FLAG &&
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
)
  await keepPostgres();

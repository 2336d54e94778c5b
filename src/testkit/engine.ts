// The test engine: the engine's own createEngine, threadpool executor (claims, leases, step rows
// and transitions committed as in production) and timekeeper, on a fresh database, with the steps
// run in the test's thread (or, with `steps: 'threads'`, on the production step pool); and the
// calls that wait until processes stop moving, which return processes as the REST API sends them.
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger, type Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import { createPool } from '../db/pool.ts';
import { makeRetriesDue, processTree } from '../db/testkit/statements.ts';
import type { Actor } from '../engine/actor.ts';
import type { WorkflowDefinition } from '../engine/dsl.ts';
import { createEngine } from '../engine/engine.ts';
import { NotFoundError } from '../engine/errors.ts';
import { createRegistry, loadRegistry, type Registry } from '../engine/registry.ts';
import { callbackPath } from '../engine/runner.ts';
import { createStepPool, type StepPool } from '../engine/step-pool.ts';
import { createTimekeeper } from '../engine/timekeeper.ts';
import type { ProcessStatus } from '../engine/types.ts';
import { createThreadpoolExecutor } from '../executors/threadpool.ts';
import { createDatabase } from './postgres.ts';
import { inProcessStepPool } from './step-pool.ts';
import type { ActAs, TestEngine, TestEngineOptions, TestProcess } from './types.ts';

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

/** The workflows: given as definitions, or loaded from a folder as the server loads them. */
async function registryOf(options: TestEngineOptions): Promise<Registry> {
  const threads = options.steps === 'threads';
  if (options.steps !== undefined && options.steps !== 'inline' && !threads)
    throw new TypeError(`createTestEngine: steps must be 'inline' or 'threads'`);
  const { workflows, workflowsDir } = options;
  if (threads && workflowsDir === undefined)
    throw new TypeError(
      "createTestEngine: steps: 'threads' needs workflowsDir, the folder the step threads load",
    );
  if (workflowsDir !== undefined) {
    if (workflows !== undefined)
      throw new TypeError('createTestEngine: give workflows or workflowsDir, not both');
    return loadRegistry(workflowsDir);
  }
  if (workflows === undefined)
    throw new TypeError('createTestEngine: give workflows (definitions) or workflowsDir');
  const seen = new Set<string>();
  for (const def of workflows) {
    if (def?.kind !== 'workflow')
      throw new TypeError('createTestEngine: workflows must be workflow({...}) definitions');
    if (seen.has(def.name))
      throw new Error(`createTestEngine: duplicate workflow name ${JSON.stringify(def.name)}`);
    seen.add(def.name);
  }
  return createRegistry([...workflows]);
}

/**
 * A process as the REST API sends it: the JSON of the very object `GET /api/processes/:id` sends
 * (Express's `res.json` is `JSON.stringify`), so dates are ISO 8601 strings and undefined fields
 * are left out.
 */
const asSent = <T>(view: T): TestProcess => JSON.parse(JSON.stringify(view)) as TestProcess;

export async function createTestEngine(options: TestEngineOptions): Promise<TestEngine> {
  const registry = await registryOf(options);
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

  const abortGraceMs = options.abortGraceMs ?? 1_000;
  // Threads: the server's own step pool, whose threads load the workflow files themselves (and
  // get the database, for the built-in tasks).
  const steps: StepPool =
    options.steps === 'threads'
      ? createStepPool({
          workflowsDir: options.workflowsDir,
          connectionString: database.url,
          maxThreads: options.stepThreads ?? 2,
          stepsPerThread: options.stepsPerThread ?? 16,
          abortGraceMs,
          timeLimitSeconds: options.stepTimeLimitSeconds ?? 3_600,
          crashLimit: options.stepCrashLimit ?? 3,
          threadMemoryMb: options.stepThreadMemoryMb ?? 512,
          maxHeapMb: options.stepThreadMaxHeapMb,
        })
      : inProcessStepPool(registry, abortGraceMs, options.stepTimeLimitSeconds ?? 3_600);
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
    ...(options.formTimeoutMs ? { formTimeoutMs: options.formTimeoutMs } : {}),
  });
  later.launch = (ids) => executor.launch(ids);
  const engine = createEngine({
    pool,
    registry,
    dispatcher: executor.dispatcher,
    logger,
    publish,
    ...(options.formTimeoutMs ? { formTimeoutMs: options.formTimeoutMs } : {}),
  });
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

  const view = async (id: string) => asSent(await engine.getProcess(id));
  const settled = async (id: string) => {
    await settle([id]);
    return view(id);
  };

  // Typed by TestEngine (the input of a typed workflow's start form); checked by the engine.
  async function start(workflow: string | WorkflowDefinition, input?: unknown, as?: ActAs) {
    const name = typeof workflow === 'string' ? workflow : workflow.name;
    const { id } = await engine.startProcess(name, input ?? {}, actor(as));
    return id;
  }
  const run = async (workflow: string | WorkflowDefinition, input?: unknown, as?: ActAs) =>
    settled(await start(workflow, input, as));

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
    start: start as TestEngine['start'],
    run: run as TestEngine['run'],
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
      return view(id);
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
      return Promise.all(ids.map(view));
    },
    async skip(id, as) {
      await engine.skipStep(id, actor(as));
      return settled(id);
    },
    async abort(id, as) {
      await engine.abortProcess(id, actor(as));
      return settled(id);
    },
    get: view,
    steps: async (id) => (await view(id)).steps,
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

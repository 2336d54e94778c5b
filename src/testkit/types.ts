// The test kit's public types: its options, the test engine's calls, a process as they return it.
import type { z } from 'zod';
import type { processSchema } from '../api/responses.ts';
import type { Logger } from '../config/logger.ts';
import type { Pool } from '../db/pool.ts';
import type { Actor } from '../engine/actor.ts';
import type { InputOf, StateOf, WorkflowDefinition } from '../engine/dsl.ts';
import type { Engine } from '../engine/engine.ts';
import type { ProcessStatus, State } from '../engine/types.ts';

/** A process as `GET /api/processes/:id` sends it: its JSON (dates as ISO 8601 strings). */
type ApiProcess = z.output<typeof processSchema>;
type Simplify<T> = { [K in keyof T]: T[K] };

/**
 * A process as `GET /api/processes/:id` returns it, exactly (the same JSON: dates are ISO 8601
 * strings; with its steps, form, callback, locks). `S`: its workflow's state (`StateOf`), whole
 * once the process completed, else what the steps so far gave (`Partial<S>`).
 */
export type TestProcess<S extends State = State> =
  | Simplify<Omit<ApiProcess, 'status' | 'currentState'> & { status: 'completed'; currentState: S }>
  | Simplify<
      Omit<ApiProcess, 'status' | 'currentState'> & {
        status: Exclude<ProcessStatus, 'completed'>;
        currentState: Partial<S>;
      }
    >;

/** A step of a process as `GET /api/processes/:id` shows it (its row, dates as ISO strings). */
export type TestStep = ApiProcess['steps'][number];

/**
 * What a start takes after the workflow: its start form's input (`InputOf`: unchecked for a
 * workflow named or untyped; optional when the form asks for nothing required), and who acts.
 */
export type StartArgs<W> =
  Record<never, never> extends InputOf<W>
    ? [input?: InputOf<W>, as?: ActAs]
    : [input: InputOf<W>, as?: ActAs];

interface CommonOptions {
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
  /** How long `run`, `resume`, `skip`, `callback` and `advanceRetries` wait for processes to stop moving. Default 10 s. */
  waitMs?: number;
  /**
   * After an abort, or past its time limit, how long a step may take to notice before it is
   * abandoned (on threads: its thread terminated). Default 1000 ms.
   */
  abortGraceMs?: number;
  /**
   * Seconds a step may run unless it declares `timeLimitSeconds` (STEP_TIME_LIMIT_SECONDS): past
   * it the step fails with `StepTimeout`, as in production. Default 3600.
   */
  stepTimeLimitSeconds?: number;
  leaseSeconds?: number;
  /**
   * How long one evaluation of a form (its page functions and refinements, which may look things
   * up) may take, as FORM_TIMEOUT_MS: past it a start or resume is refused with `form_timeout`.
   * Default 5000 ms.
   */
  formTimeoutMs?: number;
  /** Default: errors only (a step's outcome is in its process, not in the log), on stderr. */
  logger?: Logger;
}

/**
 * Steps in the test's own thread (the default): the workflows are given as definitions (those of
 * workflow files, or defined in the test, whose steps may then use the test's variables), or
 * loaded from a folder.
 */
export interface InlineStepsOptions extends CommonOptions {
  /** Where steps run: `inline`, in the test's thread (default), or `threads` (see there). */
  steps?: 'inline';
  /** The workflows to register (their definitions, e.g. the default exports of workflow files). */
  workflows?: readonly WorkflowDefinition[];
  /** Or a folder of workflow files, loaded as the server loads WORKFLOWS_DIR. */
  workflowsDir?: string;
}

/**
 * Steps on step threads, as in production: the step pool of the server (piscina threads that each
 * load the workflow files of `workflowsDir`, their event loops running between steps), so a test
 * sees what only real step threads show (module state per thread, kept-alive sockets, a step
 * blocking its thread, values that do not cross a thread). Slower to start; steps cannot use the
 * test's variables.
 */
export interface ThreadStepsOptions extends CommonOptions {
  steps: 'threads';
  /** The folder of workflow files (WORKFLOWS_DIR): the test engine and the threads load it. */
  workflowsDir: string;
  workflows?: never;
  /** Step threads (STEP_THREADS). Default 2. */
  stepThreads?: number;
  /** Steps one thread runs at once (STEPS_PER_THREAD). Default 16. */
  stepsPerThread?: number;
  /** Crashes of its thread, alone, after which a step fails with `StepCrashed` (STEP_CRASH_LIMIT). Default 3. */
  stepCrashLimit?: number;
  /** A thread whose heap exceeds this after a step is replaced (STEP_THREAD_MEMORY_MB). Default 512. */
  stepThreadMemoryMb?: number;
  /** Each thread's largest heap (STEP_THREAD_MAX_HEAP_MB). Default: Node.js's own limit. */
  stepThreadMaxHeapMb?: number;
}

export type TestEngineOptions = InlineStepsOptions | ThreadStepsOptions;

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
  /**
   * Starts a process and returns it once it stops moving (completed, suspended, waiting, failed,
   * …). Given a typed workflow, the input is its start form's (`InputOf`) and the state is typed
   * (`StateOf`); given a name, neither is.
   */
  run<W extends string | WorkflowDefinition>(
    workflow: W,
    ...args: StartArgs<W>
  ): Promise<TestProcess<StateOf<W>>>;
  /** Starts a process and returns its id at once (see `wait`); its input as for `run`. */
  start<W extends string | WorkflowDefinition>(workflow: W, ...args: StartArgs<W>): Promise<string>;
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
  /**
   * Skips the failed step of a failed (or inconsistent_data) process, as `PUT
   * /api/processes/:id/skip` does: the step is recorded `skipped` with the user, and the process
   * goes on after it. Returns it once it stops moving.
   */
  skip(id: string, as?: ActAs): Promise<TestProcess>;
  /** Aborts a process and returns it. */
  abort(id: string, as?: ActAs): Promise<TestProcess>;
  /** The process now. */
  get(id: string): Promise<TestProcess>;
  /** The process's steps, in order, as the process shows them (`TestProcess['steps']`). */
  steps(id: string): Promise<TestStep[]>;
  /** Stops the engine and drops the test database. */
  close(): Promise<void>;
}

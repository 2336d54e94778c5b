// The test kit's public types: its options, the test engine's calls, a process as they return it.
import type { Logger } from '../config/logger.ts';
import type { Pool } from '../db/pool.ts';
import type { StepRow } from '../db/processes.ts';
import type { Actor } from '../engine/actor.ts';
import type { WorkflowDefinition } from '../engine/dsl.ts';
import type { Engine } from '../engine/engine.ts';

/** A process as `GET /api/processes/:id` returns it (with its steps, form, callback, locks). */
export type TestProcess = Awaited<ReturnType<Engine['getProcess']>>;

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

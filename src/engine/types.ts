/**
 * Glossary (the words the code, the API and the docs use; src/index.ts re-exports this file's
 * public types).
 * - workflow: a named, ordered list of steps (`workflow({...})`, a file in workflows/).
 * - task: a workflow with `isTask` (default for target `system`): maintenance, listed apart.
 * - process: one instance of a workflow, identified by a uuid, with a status and a JSON state.
 * - step: one entry of a workflow's flattened step list; each try of it writes a step row.
 * - step kind: a step's `kind`: step, retry, input, callback, sleep, children (`subProcesses`).
 * - step index: position in the flattened step list; the process row stores the next one to run.
 * - run: a runner taking a claimed process step by step until it stops (`RunResult`).
 * - worker process: `npm run worker` (src/worker.ts), which runs processes from pg-boss queues.
 * - fetch loop: a worker process's loop fetching jobs for its free slots and claiming their
 *   processes (src/executors/worker.ts).
 * - step thread: a piscina thread of the step pool running step bodies (src/engine/step-pool.ts).
 * - STEP_THREADS: the step pool's thread count per process; MAX_WORKERS is its deprecated alias.
 * - executor: how processes reach a runner: `threadpool` (in the API process) or `worker`
 *   (worker mode: jobs on pg-boss queues, run by worker processes); EXECUTOR chooses.
 * - lease: a runner's hold on a process, a fresh `lease_token` + expiry; every commit is fenced
 *   by the token, so a runner that lost its lease cannot write.
 * - claim: the compare-and-set that gives a runner a runnable process with a fresh lease
 *   (`claimProcesses`, or at insert).
 * - committed step: a step row whose status clears the index (success, skipped, complete); the
 *   database allows one per index and process.
 */
export {
  CLEARED_STEP_STATUSES,
  isIn,
  ERROR_STATUSES,
  PROCESS_STATUSES,
  RESUMABLE_STATUSES,
  STARTABLE_STATUSES,
  STEP_STATUSES,
  TARGETS,
  TERMINAL_STATUSES,
  type ProcessStatus,
  type State,
  type StepStatus,
  type Target,
} from '../db/model.ts';
import type { State } from '../db/model.ts';

/** An error a step threw, made cloneable so it crosses the worker-thread boundary intact. */
export interface StepError {
  /** Which process status the error leads to. */
  outcome: 'failed' | 'aborted' | 'api_unavailable' | 'inconsistent_data';
  name: string;
  message: string;
  stack?: string;
}

/** What a step body produced: a partial state to merge, or an error. */
export type StepOutcome = { ok: true; delta: State } | { ok: false; error: StepError };

/** A step to run on the step pool (one piscina task). */
export interface StepTask {
  workflow: string;
  index: number;
  state: State;
  processId: string;
  attempt: number;
  /** A callback step: the URL its action hands out. */
  callbackUrl?: string | undefined;
  /** The step's own time limit (`timeLimitSeconds`); unset: the pool's default (STEP_TIME_LIMIT_SECONDS). */
  timeLimitSeconds?: number | undefined;
}

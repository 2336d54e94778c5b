/**
 * Glossary.
 * - workflow: a named, ordered list of steps; a *task* is a workflow with `isTask` (target system).
 * - process: one run of a workflow, identified by a uuid; its state is a JSON object.
 * - step index: position in the flattened step list; the process row stores the next one to run.
 * - lease: a runner's claim on a process, a fresh `lease_token` + expiry; every commit is fenced by
 *   the token, so a runner that lost its lease cannot write.
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
}

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
export type State = Record<string, unknown>;

export const PROCESS_STATUSES = [
  'created',
  'running',
  'suspended',
  'waiting',
  'awaiting_callback',
  'resumed',
  'completed',
  'aborted',
  'failed',
  'api_unavailable',
  'inconsistent_data',
] as const;
export type ProcessStatus = (typeof PROCESS_STATUSES)[number];

/** Statuses from which `PUT /resume` continues a process. */
export const RESUMABLE_STATUSES: readonly ProcessStatus[] = [
  'suspended',
  'waiting',
  'awaiting_callback',
  'failed',
  'api_unavailable',
  'inconsistent_data',
  'resumed',
];

/** Statuses that never change again. */
export const TERMINAL_STATUSES: readonly ProcessStatus[] = ['completed', 'aborted'];

export const STEP_STATUSES = [
  'success',
  'skipped',
  'suspend',
  'waiting',
  'awaiting_callback',
  'failed',
  'abort',
  'complete',
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export const TARGETS = [
  'create',
  'modify',
  'terminate',
  'system',
  'validate',
  'reconcile',
] as const;
export type Target = (typeof TARGETS)[number];

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
}

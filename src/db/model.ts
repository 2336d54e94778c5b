// The data model's vocabulary: the statuses a process and a step row can have, and the status
// sets the engine's statements take as parameters. One list each: the CHECK constraints in sql/
// are compared with them by test/statuses.test.ts, the live page imports them (/statuses.js).

/** A process's state, or a step's partial result: a JSON object. */
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

/** Statuses from which `PUT /resume` continues a process (DESIGN: all but created, running, completed, aborted). */
export const RESUMABLE_STATUSES = [
  'suspended',
  'waiting',
  'awaiting_callback',
  'failed',
  'api_unavailable',
  'inconsistent_data',
  'resumed',
] as const satisfies readonly ProcessStatus[];

/** Statuses that never change again. */
export const TERMINAL_STATUSES = [
  'completed',
  'aborted',
] as const satisfies readonly ProcessStatus[];

/** Statuses a runner claims from without anyone's say (besides an expired `running` lease and a due `waiting` retry). */
export const STARTABLE_STATUSES = [
  'created',
  'resumed',
] as const satisfies readonly ProcessStatus[];

/** Stopped on an error, resumable by a user: the step row is `failed`. */
export const ERROR_STATUSES = [
  'failed',
  'api_unavailable',
  'inconsistent_data',
] as const satisfies readonly ProcessStatus[];

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

/**
 * Step row statuses that clear their index: the process moved past it. The database allows one
 * such row per index and process (process_steps_cleared_once).
 */
export const CLEARED_STEP_STATUSES = [
  'success',
  'skipped',
  'complete',
] as const satisfies readonly StepStatus[];

export const TARGETS = [
  'create',
  'modify',
  'terminate',
  'system',
  'validate',
  'reconcile',
] as const;
export type Target = (typeof TARGETS)[number];

/** Whether `status` is in `set` (a typed `includes` for the readonly tuples above). */
export function isIn<T extends string>(set: readonly T[], status: string): status is T {
  return (set as readonly string[]).includes(status);
}

/** The statuses `resume-all` retries tasks from. */
export const RETRIED_BY_RESUME_ALL = [
  'failed',
  'waiting',
  'api_unavailable',
  'inconsistent_data',
] as const satisfies readonly ProcessStatus[];

/**
 * Waiting for the children it started (a subProcesses step): the end of its last child continues
 * it, and no resume may, single or bulk. A waiting process with a time (`retryAt`) waits for a
 * retry or a sleep instead. The one rule for every path that resumes (see resumeAllTasks, the
 * engine's retry); the scheduled ones (timekeeper, sweeper, overdue retries) only take processes
 * with a time or an expired lease.
 */
export function waitsForChildren(p: { status: string; retryAt: Date | string | null }): boolean {
  return p.status === 'waiting' && p.retryAt === null;
}

/** The statuses a step may be skipped or its state patched from. */
export const REPAIRABLE_STATUSES = [
  'failed',
  'inconsistent_data',
] as const satisfies readonly ProcessStatus[];

// Where a step's outcome becomes a state change: one pure function from (step definition,
// outcome, position) to what the commit writes. Each step kind is one case here; the statements
// that write it are in src/db (step-commits.ts, resumes.ts, callbacks.ts, leases.ts). Unit-tested without a database
// (test/transitions.test.ts).
import type { NewChild } from '../db/children.ts';
import type { NewCallback, StepCommit } from '../db/step-commits.ts';
import type { FromState, RetryStep, StepDef } from './dsl.ts';
import type { State, StepError } from './types.ts';

/** How running (or not running) a step ended. */
export type Outcome =
  /** Its conditions did not hold. */
  | { kind: 'skipped' }
  /** An input step: the process waits for a user. */
  | { kind: 'suspend' }
  /** The body returned a partial state. */
  | { kind: 'success'; delta: State }
  /** The body (or a condition) threw. */
  | { kind: 'error'; error: StepError }
  /** A callback step's action ran and handed out this callback. */
  | { kind: 'callback'; delta: State; tokenHash: Buffer }
  /** A sleep step was reached: the process waits until its time. */
  | { kind: 'sleep' }
  /** A subProcesses step started these children: the process waits until they end. */
  | { kind: 'children'; children: NewChild[] };

/** Where the process is when the outcome is committed. */
export interface Position {
  index: number;
  /** Attempt of the step at `index`: 1 on the first try. */
  attempt: number;
  /** Whether `index` is the workflow's last step. */
  isLast: boolean;
  /** The state the step was given. */
  state: State;
  /** Now, for retry and timeout times. */
  now: Date;
}

/** What the commit writes: a StepCommit without its identity, lease and timing. */
export type Transition = Pick<
  StepCommit,
  | 'stepStatus'
  | 'state'
  | 'processStatus'
  | 'nextIndex'
  | 'nextAttempt'
  | 'group'
  | 'error'
  | 'failedReason'
  | 'traceback'
  | 'retryAt'
  | 'callback'
  | 'children'
  | 'assignee'
>;

const resolve = (v: FromState<number> | undefined, state: State): number | undefined =>
  typeof v === 'function' ? v(state) : v;

/** Seconds before retry `attempt + 1` of a retry step: backoff × 2^(attempt-1), bounded. */
export function retryDelaySeconds(step: RetryStep, attempt: number, state: State): number {
  const base = resolve(step.backoffSeconds, state) ?? 0;
  const delay = base * 2 ** Math.max(0, attempt - 1);
  return Math.max(0, Math.min(delay, step.maxBackoffSeconds ?? Number.POSITIVE_INFINITY));
}

/** Errors a retry step retries: plain failures and unreachable APIs, not aborts or bad data. */
const retried = (e: StepError) => e.outcome === 'failed' || e.outcome === 'api_unavailable';

export function transition(step: StepDef, outcome: Outcome, at: Position): Transition {
  const group = step.group;
  const cleared = (state: State): Transition => ({
    group,
    stepStatus: outcome.kind === 'skipped' ? 'skipped' : 'success',
    state,
    processStatus: at.isLast ? 'completed' : 'running',
    nextIndex: at.index + 1,
    nextAttempt: 1,
  });
  switch (outcome.kind) {
    case 'skipped':
      return cleared(at.state);
    case 'success':
      return cleared(
        Object.keys(outcome.delta).length > 0 ? { ...at.state, ...outcome.delta } : at.state,
      );
    case 'suspend':
      return {
        group,
        stepStatus: 'suspend',
        state: at.state,
        processStatus: 'suspended',
        nextIndex: at.index,
        nextAttempt: 1,
        // Shown and filtered on while it waits here; cleared by whatever moves it on.
        ...(step.kind === 'input' && step.assignee ? { assignee: step.assignee } : {}),
      };
    case 'callback': {
      const state =
        Object.keys(outcome.delta).length > 0 ? { ...at.state, ...outcome.delta } : at.state;
      const timeout = step.kind === 'callback' ? resolve(step.timeoutSeconds, state) : undefined;
      const callback: NewCallback = {
        tokenHash: outcome.tokenHash,
        expiresAt: timeout === undefined ? undefined : new Date(at.now.getTime() + timeout * 1000),
      };
      return {
        group,
        stepStatus: 'awaiting_callback',
        state,
        processStatus: 'awaiting_callback',
        nextIndex: at.index,
        nextAttempt: 1,
        callback,
      };
    }
    case 'children':
      return {
        group,
        stepStatus: 'waiting',
        state: at.state,
        processStatus: 'waiting',
        nextIndex: at.index,
        nextAttempt: at.attempt,
        children: outcome.children,
      };
    case 'sleep': {
      const seconds = step.kind === 'sleep' ? (resolve(step.seconds, at.state) ?? 0) : 0;
      return {
        group,
        stepStatus: 'waiting',
        state: at.state,
        processStatus: 'waiting',
        nextIndex: at.index,
        nextAttempt: at.attempt,
        retryAt: new Date(at.now.getTime() + Math.max(0, seconds) * 1000),
      };
    }
    case 'error': {
      const { outcome: status, name, message, stack } = outcome.error;
      const failed: Transition = {
        group,
        stepStatus: status === 'aborted' ? 'abort' : 'failed',
        state: at.state,
        error: { name, message },
        processStatus: status,
        nextIndex: at.index,
        nextAttempt: at.attempt + 1,
        failedReason: message,
        traceback: stack,
      };
      if (step.kind !== 'retry' || !retried(outcome.error) || at.attempt >= step.maxAttempts)
        return failed;
      const delay = retryDelaySeconds(step, at.attempt, at.state);
      return {
        ...failed,
        stepStatus: 'waiting',
        processStatus: 'waiting',
        retryAt: new Date(at.now.getTime() + delay * 1000),
      };
    }
  }
}

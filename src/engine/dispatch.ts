// The executor contract: what the engine hands an executor to get a process run, what an
// executor offers the engine (the thread pool in this process, or a queue for workers), and the
// hooks it gives the runner (RunnerHooks).
import type { Queryable } from '../db/pool.ts';
import type { Claim } from '../db/leases.ts';
import type { ProcessStatus } from './types.ts';

/** A process made runnable: what an executor needs to get it run. */
export interface Dispatch {
  processId: string;
  user: string | null;
  isTask: boolean;
  target: string;
  kind: 'new' | 'resume';
  /** The status it was resumed from (a `waiting` process may have a retry scheduled already). */
  from?: ProcessStatus | undefined;
}

/** How an executor gets processes run (thread pool in this process, or a queue for workers). */
export interface Dispatcher {
  /**
   * Runs inside the transaction that made the process runnable: a rollback undoes both. Without
   * it (nothing to write), the change is its own single statement: two round trips fewer.
   */
  dispatch?(tx: Queryable, jobs: readonly Dispatch[]): Promise<void>;
  /** Runs after that transaction committed. */
  afterCommit(job: Dispatch): void;
  /**
   * Optional (threadpool): when a runner here has a free slot, a new process is claimed for it
   * in the statement that inserts it (no claim commit of its own) and handed to `run`; `cancel`
   * gives the slot back when the insert did not happen.
   */
  reserve?(): Reservation | undefined;
  /** The process was aborted: stop its step if it runs here. */
  aborted(processId: string): void;
  /**
   * A process may have become runnable outside this executor's view (a parent whose last child
   * ended): get it run now rather than at the next sweep, if nobody has it. Optional.
   */
  nudge?(processId: string): void;
  /**
   * Runs inside the transaction that clears the global lock: makes runnable again what stopped
   * for it (worker mode: jobs for the processes left without one, sent in `tx`). Returns what to
   * do once that transaction committed (threadpool: run them here).
   */
  unpause(tx: Queryable): Promise<() => void>;
}

/** A run slot held for a process about to be inserted. */
export interface Reservation {
  owner: string;
  leaseSeconds: number;
  run(claim: Claim): void;
  cancel(): void;
}

/** One tick of a schedule: the process to start, with the tick's id, in the tick's transaction. */
export interface ScheduledStart {
  id: string;
  schedule: { name: string; workflow: string; input: unknown; overlap: boolean };
  /** The transaction that completes the tick. */
  tx: Queryable;
}

/** The one way a Dispatch is made: a process of `p`'s kind and target, new or resumed. */
export function dispatchOf(
  kind: Dispatch['kind'],
  processId: string,
  user: string | null,
  p: { isTask: boolean; target: string },
  from?: ProcessStatus,
): Dispatch {
  return {
    processId,
    user,
    isTask: p.isTask,
    target: p.target,
    kind,
    ...(from === undefined ? {} : { from }),
  };
}

/** A child process as its dispatch needs it. */
export interface ChildJob {
  processId: string;
  user: string | null;
  isTask: boolean;
  target: string;
}

/** What an executor does at points of a run (see createRunner); each is optional. */
export interface RunnerHooks {
  /**
   * Called inside the transaction that gives a process back on shutdown, so that it is queued
   * again at once (worker mode). Default: nothing (a starting engine picks it up).
   */
  requeue: (tx: Queryable, processId: string, createdBy: string | null) => Promise<void>;
  /**
   * Called inside the transaction that commits a retry step's failure (status `waiting`), so that
   * the retry is durable with it (worker mode: a job that starts at `at`). Default: nothing (the
   * timekeeper finds due retries through their index).
   */
  scheduleRetry: (
    tx: Queryable,
    processId: string,
    createdBy: string | null,
    at: Date,
  ) => Promise<void>;
  /**
   * Called inside the transaction that starts a subProcesses step's children (worker mode: their
   * jobs). Default: nothing.
   */
  startChildren: (tx: Queryable, children: readonly ChildJob[]) => Promise<void>;
  /** Children started and committed: run them (threadpool). Default: nothing. */
  childrenStarted: (ids: readonly string[]) => void;
  /** A child process ended (completed or aborted) here: its parent may go on. */
  childEnded: (parentId: string) => void;
  /** Told after a commit that something of this process is due at `at` (a retry, a callback timeout). */
  onDue: (processId: string, at: Date) => void;
  /**
   * The URL a callback step hands out for `token`. Default: the path alone. May be async (worker
   * mode reads the API's address from the database); when it throws, the step fails with its
   * message and nothing runs: never a wrong address.
   */
  callbackUrl: (processId: string, token: string) => string | Promise<string>;
}

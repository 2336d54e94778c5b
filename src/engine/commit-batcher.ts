import type { Queryable } from '../db/pool.ts';
import type { CommitResult, StepCommit } from '../db/step-commits.ts';
import { commitPlainSteps } from '../db/step-commits.ts';
import { createBatcher } from './batcher.ts';

export interface CommitBatcherOptions {
  db: Queryable;
  leaseSeconds: number;
  /**
   * Commits one step on its own, retrying through connection failures. `afterFailure`: a batch
   * holding it failed, so its step row may already exist (written by this lease holder).
   */
  single: (commit: StepCommit, afterFailure: boolean) => Promise<CommitResult>;
  /** Batch statements in flight at once; commits arriving meanwhile wait and go together. Default 3. */
  maxInFlight?: number;
  /** Commits per statement at most. Default 64. */
  maxBatch?: number;
}

export interface CommitBatcher {
  /** Resolves with whether the lease was held (the step was committed), and its events. */
  commit(commit: StepCommit): Promise<CommitResult>;
}

/**
 * Group commit of plain steps (see createBatcher): one round trip and one WAL flush for the steps
 * of many processes when the engine is busy, each row still fenced by its own lease token.
 */
export function createCommitBatcher(opts: CommitBatcherOptions): CommitBatcher {
  const batcher = createBatcher<StepCommit, CommitResult>({
    one: opts.single,
    many: (commits) => commitPlainSteps(opts.db, commits, opts.leaseSeconds),
    maxInFlight: opts.maxInFlight,
    maxBatch: opts.maxBatch,
  });
  return { commit: (c) => batcher.add(c) };
}

// A runner's step commits: a plain step grouped with other processes' (commit-batcher.ts); any
// other alone, with what its transaction carries (children started, a retry scheduled), retried
// through connection failures.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../config/logger.ts';
import { isConnectionError, isLockTimeout, withTransaction, type Pool } from '../db/pool.ts';
import { insertChildren } from '../db/children.ts';
import {
  commitStep,
  isPlainCommit,
  type CommitResult,
  type StepCommit,
} from '../db/step-commits.ts';
import { createCommitBatcher } from './commit-batcher.ts';
import type { RunnerHooks } from './dispatch.ts';

export interface StepCommitterOptions {
  pool: Pool;
  leaseSeconds: number;
  logger: Logger;
  /** Group-commit statements out at once (see commit-batcher). */
  commitsInFlight?: number | undefined;
  hooks: Partial<Pick<RunnerHooks, 'scheduleRetry' | 'startChildren'>>;
}

export interface StepCommitter {
  /** Resolves with whether the lease was held (the step was committed), and its events. */
  commit(commit: StepCommit): Promise<CommitResult>;
}

export function createStepCommitter(opts: StepCommitterOptions): StepCommitter {
  const { pool, leaseSeconds, logger, hooks } = opts;

  /**
   * Commits, retrying through connection failures (database restart) for up to one lease. A
   * retry that meets its own earlier, acknowledged-too-late commit sees the unique index on
   * cleared steps: only the lease holder can have written that row, so it counts as committed.
   */
  async function commitWithRetry(commit: StepCommit, afterFailure = false): Promise<CommitResult> {
    const deadline = Date.now() + leaseSeconds * 1000;
    const { scheduleRetry } = hooks;
    const retryAt = commit.retryAt;
    // A retry scheduled elsewhere (a queue) goes in the commit's transaction.
    const { children } = commit;
    const write = children
      ? () =>
          withTransaction(pool, async (tx) => {
            const r = await commitStep(tx, commit);
            if (!r.held) return r;
            const events = await insertChildren(tx, commit.id, commit.index, children);
            await hooks.startChildren?.(
              tx,
              children.map((c) => ({
                processId: c.id,
                user: c.createdBy,
                isTask: c.isTask,
                target: c.target,
              })),
            );
            return r.events ? { held: true as const, events: r.events, more: events } : r;
          })
      : scheduleRetry && retryAt
        ? () =>
            withTransaction(pool, async (tx) => {
              const r = await commitStep(tx, commit);
              if (r.held) await scheduleRetry(tx, commit.id, commit.createdBy, retryAt);
              return r;
            })
        : () => commitStep(pool, commit);
    for (let delay = 100, retried = afterFailure; ; delay = Math.min(delay * 2, 2_000)) {
      try {
        return await write();
      } catch (err) {
        // Committed by the earlier try, whose events are unknown: listeners may miss this step.
        if (retried && (err as { constraint?: string }).constraint === 'process_steps_cleared_once')
          return { held: true, events: null };
        // A connection lost or refused (too many clients), or a row locked past lock_timeout by
        // a session that will be ended (idle_in_transaction_session_timeout): tried again.
        const transient = isConnectionError(err) || isLockTimeout(err);
        if (!transient || Date.now() + delay > deadline) throw err;
        logger.warn('commit failed, retrying', { processId: commit.id, step: commit.name, err });
        retried = true;
        await sleep(delay);
      }
    }
  }

  const batcher = createCommitBatcher({
    db: pool,
    leaseSeconds,
    single: commitWithRetry,
    maxInFlight: opts.commitsInFlight,
  });

  return {
    commit: (commit) => (isPlainCommit(commit) ? batcher.commit(commit) : commitWithRetry(commit)),
  };
}

import type { Queryable } from '../db/pool.ts';
import type { CommitResult, StepCommit } from '../db/processes.ts';
import { commitPlainSteps } from '../db/step-commits.ts';

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

interface Pending {
  commit: StepCommit;
  resolve: (result: CommitResult) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit of plain steps: an idle engine sends each commit at once (no added latency); a busy
 * one, with `maxInFlight` statements out, collects the commits that arrive meanwhile into the
 * next statement: one round trip and one WAL flush for many steps. A failed batch falls back to
 * committing its steps one by one.
 */
export function createCommitBatcher(opts: CommitBatcherOptions): CommitBatcher {
  const maxInFlight = opts.maxInFlight ?? 3;
  const maxBatch = opts.maxBatch ?? 64;
  const queue: Pending[] = [];
  let inFlight = 0;

  async function send(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const [p] = batch as [Pending];
      await opts.single(p.commit, false).then(p.resolve, p.reject);
      return;
    }
    let results: CommitResult[];
    try {
      results = await commitPlainSteps(
        opts.db,
        batch.map((p) => p.commit),
        opts.leaseSeconds,
      );
    } catch {
      await Promise.all(batch.map((p) => opts.single(p.commit, true).then(p.resolve, p.reject)));
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i] ?? { held: false }));
  }

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      inFlight++;
      void send(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  return {
    commit(commit) {
      return new Promise<CommitResult>((resolve, reject) => {
        queue.push({ commit, resolve, reject });
        pump();
      });
    },
  };
}

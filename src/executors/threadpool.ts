import os from 'node:os';
import type { Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import type { Pool } from '../db/pool.ts';
import { findOrphanRows } from '../db/orphans.ts';
import { claimProcesses, type Claim } from '../db/leases.ts';
import type { Dispatcher, RunnerHooks } from '../engine/dispatch.ts';
import type { Registry } from '../engine/registry.ts';
import { createRunner, type Runner } from '../engine/runner.ts';
import type { StepPool } from '../engine/step-pool.ts';
import type { EngineMetrics } from '../engine/metrics.ts';

export interface ThreadpoolOptions {
  pool: Pool;
  registry: Registry;
  steps: StepPool;
  leaseSeconds: number;
  logger: Logger;
  /** Where the events of committed changes go. */
  publish: Publish;
  /** How often to look for processes left behind (expired leases, never started). Default: lease / 2. */
  sweepIntervalMs?: number;
  /**
   * Processes run at once; more wait in a local queue (they are durable rows, so a crash loses
   * nothing: the sweeper picks them up). Unbounded, a burst of 5,000 starts kept 5,000 runs, their
   * timers and their queued pool tasks in memory at once (430 MB peak RSS). Default 64.
   * Processes found with an expired lease (their runner died mid-way) run before the waiting
   * backlog and may take up to as many again beyond it, so that a backlog of long runs holding
   * every slot cannot keep them waiting past one lease.
   */
  maxRunning?: number;
  /** The URL a callback step hands out (see RunnerHooks.callbackUrl). */
  callbackUrl?: RunnerHooks['callbackUrl'];
  /** Told when a commit here made something due later (a retry, a callback timeout). */
  onDue?: (processId: string, at: Date) => void;
  metrics?: EngineMetrics;
  /** See RunnerOptions.maxStateBytes. */
  maxStateBytes?: number;
  /** See RunnerOptions.formTimeoutMs. */
  formTimeoutMs?: number;
}

export interface ThreadpoolExecutor {
  dispatcher: Dispatcher;
  runner: Runner;
  /** Picks up what an earlier instance left behind, then sweeps periodically. */
  start(): Promise<void>;
  /** Runs these processes when a slot is free (waiting ones whose retry is due). */
  launch(ids: readonly string[]): void;
  /** Stops sweeping and hands back running processes (see Runner.stop). */
  stop(timeoutMs: number): Promise<void>;
}

/** Runs processes inside this process; step bodies go to the piscina pool. */
export function createThreadpoolExecutor(opts: ThreadpoolOptions): ThreadpoolExecutor {
  const logger = opts.logger.child({ component: 'threadpool' });
  const owner = `api:${os.hostname()}:${process.pid}`;
  const runner = createRunner({
    pool: opts.pool,
    registry: opts.registry,
    steps: opts.steps,
    leaseSeconds: opts.leaseSeconds,
    logger,
    publish: opts.publish,
    ...(opts.maxStateBytes ? { maxStateBytes: opts.maxStateBytes } : {}),
    ...(opts.formTimeoutMs ? { formTimeoutMs: opts.formTimeoutMs } : {}),
    hooks: {
      callbackUrl: opts.callbackUrl,
      onDue: opts.onDue,
      // Children started here run here; a parent whose last child ended here goes on at once.
      childrenStarted: (ids) => {
        for (const id of ids) launch(id);
      },
      childEnded: (parentId) => launch(parentId),
    },
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const maxRunning = opts.maxRunning ?? 64;
  // Processes of workflows this instance does not have are left to an instance that has them.
  const workflowNames = opts.registry.list().map((d) => d.name);
  // Two local queues, each insertion-ordered (first come, first run); an id is in at most one.
  // `urgent`: processes the sweeper found `running` with an expired lease. They go first, and may
  // run while fewer than 2 × maxRunning run, the backlog only while fewer than maxRunning do.
  const urgent = new Set<string>();
  const waiting = new Set<string>();
  // Ids handed to the runner whose run has not ended (claim included): the sweeper leaves them
  // alone. A process never runs twice at once in any case: the runner refuses one it is running,
  // and the claim is a compare-and-set on the row.
  const launched = new Set<string>();
  let running = 0;
  let stopped = false;
  /** Gives back a slot counted in `running` (its process ended, or was not claimed). */
  const freeSlot = (processId: string) => {
    launched.delete(processId);
    running--;
    schedule();
  };
  /** Runs a claimed process in a slot already counted in `running`. */
  const runInSlot = (claim: Claim) => {
    launched.add(claim.id);
    runner
      .runClaimed(claim)
      .catch((err: unknown) =>
        logger.error('process run failed', {
          processId: claim.id,
          workflow: claim.workflowName,
          err,
        }),
      )
      .finally(() => freeSlot(claim.id));
  };
  /**
   * Fills the free slots: the processes picked are claimed in one statement. Runs once per turn
   * of the event loop, so that slots freed together (a batch of step commits ending several
   * processes) are filled by one claim.
   */
  const next = () => {
    const picked: string[] = [];
    while (!stopped) {
      const busy = running + picked.length;
      const from =
        urgent.size > 0 && busy < 2 * maxRunning
          ? urgent
          : waiting.size > 0 && busy < maxRunning
            ? waiting
            : undefined;
      if (!from) break;
      const processId = from.values().next().value as string;
      from.delete(processId);
      picked.push(processId);
    }
    if (picked.length === 0) return;
    running += picked.length;
    for (const id of picked) launched.add(id);
    claimProcesses(opts.pool, picked, owner, opts.leaseSeconds, workflowNames).then(
      (claims) => {
        opts.publish(claims.map((c) => c.event));
        const claimed = new Set(claims.map((c) => c.id));
        for (const claim of claims) runInSlot(claim);
        // Someone else's, or not runnable any more.
        for (const id of picked) if (!claimed.has(id)) freeSlot(id);
      },
      (err: unknown) => {
        // Left as they are (created/resumed): the next sweep picks them up.
        logger.warn('claiming processes failed', { count: picked.length, err });
        for (const id of picked) freeSlot(id);
      },
    );
  };
  let scheduled = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      next();
    });
  };
  const launch = (processId: string) => {
    if (!urgent.has(processId)) waiting.add(processId);
    schedule();
  };
  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;

  /** `graceSeconds`: leave just-created processes to the instance that created them. */
  async function sweep(graceSeconds: number): Promise<void> {
    if (sweeping) return;
    sweeping = true;
    try {
      const orphans = await findOrphanRows(opts.pool, graceSeconds, 500);
      const mine = new Set([...runner.active(), ...launched]);
      let leaseExpired = 0;
      for (const { id, leaseExpired: expired } of orphans) {
        if (mine.has(id) || urgent.has(id)) continue;
        if (expired) {
          // Its runner died: ahead of the backlog, even when it was already queued there.
          waiting.delete(id);
          urgent.add(id);
          leaseExpired++;
        } else {
          waiting.add(id);
        }
      }
      next();
      opts.metrics?.leasesRecovered(leaseExpired);
      if (orphans.length) {
        logger.info('picked up processes', { count: orphans.length, leaseExpired });
      }
    } catch (err) {
      logger.warn('sweep failed', { err });
    } finally {
      sweeping = false;
    }
  }

  return {
    runner,
    launch(ids) {
      for (const id of ids) if (!launched.has(id)) launch(id);
    },
    dispatcher: {
      afterCommit: (job) => launch(job.processId),
      // A free slot and nobody waiting: the new process is claimed in its own insert.
      reserve() {
        if (stopped || running >= maxRunning || waiting.size > 0 || urgent.size > 0) return;
        running++;
        return {
          owner,
          leaseSeconds: opts.leaseSeconds,
          run: runInSlot,
          cancel: () => {
            running--;
            schedule();
          },
        };
      },
      aborted: (processId) => runner.abortLocal(processId),
      nudge: (processId) => {
        if (!launched.has(processId)) launch(processId);
      },
      // Everything that stopped for the lock (or was started and refused meanwhile) runs again.
      async unpause(tx) {
        const orphans = await findOrphanRows(tx, 0, 10_000);
        return () => {
          for (const { id, leaseExpired } of orphans) {
            if (launched.has(id)) continue;
            if (leaseExpired) {
              waiting.delete(id);
              urgent.add(id);
            } else launch(id);
          }
          schedule();
        };
      },
    },
    async start() {
      await sweep(0);
      const every = opts.sweepIntervalMs ?? (opts.leaseSeconds * 1000) / 2;
      timer = setInterval(() => void sweep(Math.max(5, opts.leaseSeconds / 2)), every);
      timer.unref();
    },
    async stop(timeoutMs) {
      clearInterval(timer);
      // Queued processes stay `created`/`resumed`: the next instance's first sweep takes them.
      stopped = true;
      urgent.clear();
      waiting.clear();
      await runner.stop(timeoutMs);
    },
  };
}

// The worker side of worker mode: consumes pg-boss queues and runs each job's process with the
// same runner as the threadpool mode (lease + fencing token, heartbeat, fenced commits).
//
// The hand-off costs two statements for many processes: one fetch of as many jobs as the worker
// has free slots (from its queues in turn), then the claim of all their processes in one
// statement; the jobs are completed after that, off the path to the first step. A job is only a
// wake-up call: once its process is claimed the lease is the truth, and a worker that dies
// leaves an expired lease (or, between fetch and claim, an active job older than a lease) that
// the sweeper queues again. These statements run on connections whose commits do not wait for
// their WAL flush: whatever a step commits later is flushed after them, and a fetch or claim lost
// with the database leaves job and process as they were.
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import { parentResumed } from '../db/children.ts';
import { inTransaction } from '../db/jobs.ts';
import { retryOnConnectionError, type Pool } from '../db/pool.ts';
import { claimProcesses, type Claim } from '../db/leases.ts';
import { dispatchOf, type RunnerHooks } from '../engine/dispatch.ts';
import type { Registry } from '../engine/registry.ts';
import { createRunner, type Runner } from '../engine/runner.ts';
import type { StepPool } from '../engine/step-pool.ts';
import type { EngineMetrics } from '../engine/metrics.ts';
import { jobDataSchema, RESUME_QUEUES } from './boss.ts';
import {
  queueIfUnqueuedWith,
  requeueInTransaction,
  retryInTransaction,
  sendJobs,
} from './queue.ts';

export interface WorkerExecutorOptions {
  pool: Pool;
  /** Connections for fetch, claim and completion, with `synchronous_commit = off`. */
  handOffPool: Pool;
  boss: PgBoss;
  registry: Registry;
  steps: StepPool;
  /** Queues to consume. */
  queues: readonly string[];
  /** Processes run at once by this worker, whatever queues they come from. */
  concurrency: number;
  /** Longest wait between two looks at idle queues when no wake-up came. Default 2000 ms. */
  pollIntervalMs?: number;
  targetQueues: readonly string[];
  leaseSeconds: number;
  /** Lease owner shown in `lease_owner`, e.g. `worker:host:pid`. */
  owner: string;
  logger: Logger;
  /** Where the events of committed changes go. */
  publish: Publish;
  /** The URL a callback step hands out (see RunnerHooks.callbackUrl). */
  callbackUrl?: RunnerHooks['callbackUrl'];
  metrics?: EngineMetrics;
  /** See RunnerOptions.maxStateBytes. */
  maxStateBytes?: number;
  /** See RunnerOptions.formTimeoutMs. */
  formTimeoutMs?: number;
}

export type WorkerState = 'created' | 'running' | 'stopping' | 'stopped';

export interface WorkerExecutor {
  runner: Runner;
  state(): WorkerState;
  /** Starts consuming. */
  start(): Promise<void>;
  /**
   * A job may be waiting in `queue` (a process was created or resumed there): with a free slot the
   * worker fetches at once, that queue first. Without a queue (notifications may have been
   * missed), it looks at all its queues.
   */
  wake(queue?: string): void;
  /**
   * Stops fetching, lets running steps finish for up to `timeoutMs`, and gives back processes that
   * are mid-way (re-queued at once). Idempotent.
   */
  stop(timeoutMs: number): Promise<void>;
}

export function createWorkerExecutor(opts: WorkerExecutorOptions): WorkerExecutor {
  const { boss, queues, concurrency, pool, publish } = opts;
  const logger = opts.logger.child({ component: 'worker' });
  const queueIfUnqueued = queueIfUnqueuedWith(boss, pool, opts.targetQueues);
  const workflowNames = opts.registry.list().map((d) => d.name);
  const runner = createRunner({
    pool,
    registry: opts.registry,
    steps: opts.steps,
    leaseSeconds: opts.leaseSeconds,
    logger,
    publish,
    // A worker runs fewer processes at once than the threadpool: with two statements out, the
    // steps finishing meanwhile go together (measured: +50 % processes/s over three).
    commitsInFlight: 2,
    ...(opts.maxStateBytes ? { maxStateBytes: opts.maxStateBytes } : {}),
    ...(opts.formTimeoutMs ? { formTimeoutMs: opts.formTimeoutMs } : {}),
    hooks: {
      requeue: requeueInTransaction(boss, opts.targetQueues),
      // A retry is a job that starts at its time, sent with the failure's commit; this worker
      // looks into its queues then (others find it by polling).
      scheduleRetry: retryInTransaction(boss, opts.targetQueues),
      onDue: (_id, at) => {
        const t = setTimeout(() => wake(), Math.max(0, at.getTime() - Date.now()) + 50);
        t.unref();
      },
      callbackUrl: opts.callbackUrl,
      // Children's jobs go in the transaction that starts them; a parent whose last child ended
      // here is queued at once (unless it has a job already).
      startChildren: (tx, children) =>
        sendJobs(
          boss,
          tx,
          children.map((c) => dispatchOf('new', c.processId, c.user, c)),
          opts.targetQueues,
        ),
      childEnded: (parentId) => parentMayGoOn(parentId),
    },
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  /**
   * Parents whose child ended here, with whether another one ended while their look was out. A
   * parent is queued (and this worker woken for it) once the last child's commit resumed it: a
   * read per child, not a transaction locking the parent's row (which queued the children's ends
   * behind each other, and wrote a lock to the parent's row per child).
   */
  const parentLooks = new Map<string, boolean>();
  function parentMayGoOn(parentId: string): void {
    if (parentLooks.has(parentId)) {
      parentLooks.set(parentId, true);
      return;
    }
    parentLooks.set(parentId, false);
    void (async () => {
      do {
        parentLooks.set(parentId, false);
        if (!(await parentResumed(pool, parentId))) continue;
        const window = { graceSeconds: 0, leaseSeconds: opts.leaseSeconds };
        if (await queueIfUnqueued(parentId, window)) wake();
      } while (parentLooks.get(parentId));
    })()
      .catch((err: unknown) =>
        logger.warn('could not queue a parent; the sweep will', { parentId, err }),
      )
      .finally(() => parentLooks.delete(parentId));
  }
  let state: WorkerState = 'created';
  let stopping: Promise<void> | undefined;
  const pollIntervalMs = opts.pollIntervalMs ?? 2_000;
  const consumesTargetQueues = queues.some((q) => opts.targetQueues.includes(q));

  /** Processes claimed and not yet ended: the slots in use. */
  let busy = 0;
  let fetching: Promise<void> | undefined;
  /** A wake-up came while a fetch was out: look again when it returns. */
  let again = false;
  /**
   * Queues that may hold jobs, each with the number of the wake-up that said so: a fetch that
   * finds a queue empty forgets it only if no wake-up for it came meanwhile. Only these are
   * fetched from, so a worker woken for one queue does not look into the empty others.
   */
  const maybeJobs = new Map<string, number>();
  let wakeUps = 0;
  const mayHaveJobs = (queue: string) => maybeJobs.set(queue, ++wakeUps);
  let turn = 0;
  let timer: NodeJS.Timeout | undefined;
  let backoff = 250;

  /** Looks into every queue again after `ms` unless something wakes the worker first. */
  function lookAgainIn(ms: number): void {
    clearTimeout(timer);
    timer = setTimeout(() => {
      for (const q of queues) mayHaveJobs(q);
      kick();
    }, ms);
  }

  const handOffDb = inTransaction(opts.handOffPool);
  /** Completions of claimed jobs still out (awaited on stop). */
  const settling = new Set<Promise<void>>();
  /**
   * Completes claimed jobs, retrying through connection failures for up to one lease while the
   * worker runs: a job left active beside a process resumed later would count as a second job.
   */
  function settle(jobs: Map<string, string[]>): void {
    const done = (async () => {
      for (const [queue, ids] of jobs) {
        await retryOnConnectionError(() => boss.complete(queue, ids, null, { db: handOffDb }), {
          forMs: opts.leaseSeconds * 1000,
          firstDelayMs: 100,
          maxDelayMs: 2_000,
          keepTrying: () => state === 'running',
        }).catch((err: unknown) =>
          logger.warn(
            'could not complete claimed jobs: they stay active until pg-boss expires them',
            {
              queue,
              count: ids.length,
              err,
            },
          ),
        );
      }
    })().finally(() => settling.delete(done));
    settling.add(done);
  }

  /** Fetches up to `want` jobs and claims their processes; their jobs are completed after. */
  async function handOff(want: number): Promise<{ fetched: number; claims: Claim[] }> {
    // Resume queues first: a resumed process, or one whose runner died (queued again by the
    // sweeper), goes before the backlog of new ones. The others in turn, so that one busy queue
    // does not starve the rest.
    const order = queues
      .map((_, i) => queues[(turn + i) % queues.length]!)
      .filter((q) => maybeJobs.has(q))
      .sort((a, b) => Number(RESUME_QUEUES.has(b)) - Number(RESUME_QUEUES.has(a)))
      .map((q) => [q, maybeJobs.get(q)] as const);
    turn++;
    if (order.length === 0) return { fetched: 0, claims: [] };
    const jobs = new Map<string, string[]>();
    const ids: string[] = [];
    let fetched = 0;
    for (const [queue, mark] of order) {
      if (fetched >= want) break;
      const asked = want - fetched;
      const got = await boss.fetch(queue, { batchSize: asked, db: handOffDb });
      if (got.length < asked && maybeJobs.get(queue) === mark) maybeJobs.delete(queue);
      if (got.length === 0) continue;
      fetched += got.length;
      jobs.set(
        queue,
        got.map((j) => j.id),
      );
      for (const j of got) {
        const parsed = jobDataSchema.safeParse(j.data);
        if (parsed.success) ids.push(parsed.data.processId);
        else logger.error('job without a valid process id: dropped', { queue, data: j.data });
      }
    }
    if (fetched === 0) return { fetched, claims: [] };
    // Processes running elsewhere or ended are not claimed: their jobs are settled all the same.
    // Only processes of workflows this worker has: another worker (a newer deployment) may know them.
    const claims = await claimProcesses(
      opts.handOffPool,
      ids,
      opts.owner,
      opts.leaseSeconds,
      workflowNames,
    );
    settle(jobs);
    return { fetched, claims };
  }

  function wake(queue?: string): void {
    if (queue !== undefined && queues.includes(queue)) mayHaveJobs(queue);
    // The event names the standard queue; a process may be routed to a per-target queue.
    else if (queue === undefined || consumesTargetQueues) for (const q of queues) mayHaveJobs(q);
    else return;
    kick();
  }

  /** Fills the free slots: one fetch out at a time, again while jobs keep coming. */
  function kick(): void {
    if (state !== 'running') return;
    if (fetching) {
      again = true;
      return;
    }
    const want = concurrency - busy;
    if (want <= 0) return; // The next process to end looks again.
    again = false;
    clearTimeout(timer);
    fetching = (async () => {
      let got: Awaited<ReturnType<typeof handOff>>;
      try {
        got = await handOff(want);
        backoff = 250;
      } catch (err) {
        logger.warn('fetching jobs failed; retrying', { err });
        lookAgainIn(backoff);
        backoff = Math.min(backoff * 2, 5_000);
        return;
      }
      publish(got.claims.map((c) => c.event));
      for (const claim of got.claims) {
        busy++;
        runner
          .runClaimed(claim)
          .then((result) =>
            logger.debug('process done', {
              processId: claim.id,
              workflow: claim.workflowName,
              result,
            }),
          )
          .catch((err: unknown) =>
            logger.error('process run failed', {
              processId: claim.id,
              workflow: claim.workflowName,
              err,
            }),
          )
          .finally(() => {
            busy--;
            kick();
          });
      }
      // A full batch may have left more behind; an empty one means the queues are drained, and
      // the next wake-up (or the polling fallback) looks again.
      if (got.fetched >= want) again = true;
      else lookAgainIn(pollIntervalMs);
    })().finally(() => {
      fetching = undefined;
      if (again) kick();
    });
  }

  return {
    runner,
    state: () => state,
    async start() {
      if (state !== 'created') return;
      state = 'running';
      logger.info('consuming', { queues, concurrency });
      for (const q of queues) mayHaveJobs(q);
      kick();
    },
    wake,
    stop(timeoutMs) {
      stopping ??= (async () => {
        state = 'stopping';
        clearTimeout(timer);
        await fetching;
        await runner.stop(timeoutMs);
        await Promise.all(settling);
        state = 'stopped';
      })();
      return stopping;
    },
  };
}

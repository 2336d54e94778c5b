// The step pool: routes each step to a lane (a one-thread piscina instance, step-lanes.ts, whose
// top describes the design), and takes a thread away from a step past its limit, a crash, memory.
import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import {
  answers,
  CLAIM_HANDED,
  CLAIM_STARTED,
  CLAIM_WITHDRAWN,
  crashReason,
  EXTRA_IDLE_MS,
  failed,
  openLane,
  pickLane,
  regularLanes,
  StepAbandonedError,
  TICK_MS,
  type AbortNotice,
  type Exec,
  type Job,
  type Lane,
  type StepMessage,
  type StepPool,
  type StepPoolOptions,
  type StepReply,
} from './step-lanes.ts';
import type { StepError, StepOutcome } from './types.ts';

export { StepAbandonedError, type StepPool, type StepPoolOptions };

/** A pool of one-thread piscina lanes; see the top of step-lanes.ts. */
export function createStepPool(opts: StepPoolOptions): StepPool {
  const maxThreads = Math.max(1, opts.maxThreads);
  const maxLanes = 2 * maxThreads;
  const stepsPerThread = opts.stepsPerThread ?? 16;
  const grace = opts.abortGraceMs ?? 5_000;
  const defaultLimitMs = (opts.timeLimitSeconds ?? 3_600) * 1000;
  const crashLimit = opts.crashLimit ?? 3;
  const memoryLimit = (opts.threadMemoryMb ?? 512) * 1024 * 1024;
  const abortChannel = `step-abort:${randomUUID()}`;
  const aborts = new BroadcastChannel(abortChannel);
  aborts.unref();

  const lanes = new Set<Lane>();
  /** Steps waiting for a lane, in order; suspects wait for a quarantine lane. */
  let queue: Job[] = [];
  let suspects: Job[] = [];
  const jobs = new Set<Job>();
  let nextTaskId = 0;
  let nextLaneId = 0;
  /** Threads in a row that crashed before any step started on them. */
  let startFailures = 0;
  let closing: Promise<void> | undefined;

  function newLane(kind: Lane['kind']): Lane {
    const lane: Lane = openLane(kind, {
      id: ++nextLaneId,
      capacity: kind === 'quarantine' ? 1 : stepsPerThread,
      workflowsDir: opts.workflowsDir,
      connectionString: opts.connectionString,
      abortChannel,
      maxHeapMb: opts.maxHeapMb,
      onExit: (err: unknown) => crashed(lane, err),
    });
    lanes.add(lane);
    return lane;
  }

  /** Takes a lane away: no step goes to it again, its thread is terminated. */
  function kill(lane: Lane): Exec[] {
    const execs = [...lane.execs];
    lane.state = 'dead';
    lane.execs.clear();
    lanes.delete(lane);
    lane.piscina.destroy().catch(() => undefined);
    return execs;
  }

  function settle(job: Job, result: { outcome: StepOutcome } | { error: Error }): void {
    if (job.done) return;
    job.done = true;
    job.exec = undefined;
    jobs.delete(job);
    job.signal.removeEventListener('abort', job.onAbort);
    if ('outcome' in result) job.resolve(result.outcome);
    else job.reject(result.error);
  }

  const abandoned = () => new StepAbandonedError(`step ignored its abort for ${grace} ms`);

  /** Queues steps again, ahead of the others (they were on their way already), in their order. */
  function again(...back: Job[]): void {
    for (const job of back) job.exec = undefined;
    suspects.unshift(...back.filter((j) => j.suspect));
    queue.unshift(...back.filter((j) => !j.suspect));
  }

  /**
   * The steps of a lane taken away: each stopped one ends as it must (timed out, abandoned),
   * the others run again, as suspects when `crash` says the thread crashed under them.
   */
  function rehome(execs: Exec[], lane: Lane, crash?: string): void {
    const live = execs.filter((e) => e.job.exec === e && !e.withdrawn);
    const started = live.filter((e) => Atomics.load(lane.claims, e.slot) === CLAIM_STARTED);
    const back: Job[] = [];
    for (const e of live) {
      const { job } = e;
      job.exec = undefined;
      if (job.timedOut) settle(job, { outcome: job.timedOut });
      else if (job.aborted) settle(job, { error: abandoned() });
      else if (!started.includes(e)) back.push(job);
      else if (crash === undefined) back.push(job);
      else if (started.length === 1) {
        // It ran alone: the crash is its own.
        job.crashes++;
        if (job.crashes >= crashLimit)
          settle(job, {
            outcome: failed(
              'StepCrashed',
              `the step crashed its thread ${job.crashes} times (STEP_CRASH_LIMIT): ${crash}`,
            ),
          });
        else {
          job.suspect = true;
          back.push(job);
        }
      } else {
        job.suspect = true;
        back.push(job);
      }
    }
    again(...back);
  }

  function crashed(lane: Lane, err: unknown): void {
    if (lane.state === 'dead') return;
    const execs = kill(lane);
    const reason = crashReason(err);
    const started = execs.some((e) => Atomics.load(lane.claims, e.slot) === CLAIM_STARTED);
    // A thread that cannot even start (a workflow file that throws in a thread) would be replaced
    // over and over: after crashLimit such crashes in a row, the steps handed to it fail.
    startFailures = lane.ran || started ? 0 : startFailures + 1;
    if (startFailures >= crashLimit) {
      const message = `the step thread crashed ${startFailures} times before running a step: ${reason}`;
      for (const e of execs)
        if (e.job.exec === e && !e.withdrawn)
          settle(e.job, { outcome: failed('StepCrashed', message) });
    } else rehome(execs, lane, reason);
    dispatch();
  }

  /** Terminates a lane whose step would not stop; the others on it run again elsewhere. */
  function terminate(lane: Lane): void {
    if (lane.state === 'dead') return;
    rehome(kill(lane), lane);
    dispatch();
  }

  function release(exec: Exec): void {
    const { lane } = exec;
    if (!lane.execs.delete(exec)) return;
    lane.freeSlots.push(exec.slot);
    if (lane.execs.size === 0) lane.idleSince = Date.now();
  }

  function answered(exec: Exec, reply: StepReply): void {
    const { job, lane } = exec;
    if (lane.state === 'dead') return;
    release(exec);
    if (!('withdrawn' in reply)) {
      lane.ran = true;
      if (reply.heapBytes > memoryLimit && lane.state === 'open') lane.state = 'draining';
    }
    if (job.exec === exec) {
      if ('withdrawn' in reply) again(job);
      else settle(job, { outcome: job.timedOut ?? reply.outcome });
    }
    if (lane.state === 'draining' && lane.execs.size === 0) kill(lane);
    dispatch();
  }

  function refused(exec: Exec, err: unknown): void {
    const { job, lane } = exec;
    if (lane.state === 'dead') return;
    if (lane.crashError !== undefined || !lane.worker || lane.worker.threadId < 0) {
      crashed(lane, lane.crashError ?? err);
      return;
    }
    // Piscina's own refusal of this task (e.g. a result that cannot cross the thread).
    release(exec);
    if (job.exec === exec) {
      const e = err instanceof Error ? err : new Error(String(err));
      const error: StepError = { outcome: 'failed', name: e.name, message: e.message || e.name };
      settle(job, { outcome: job.timedOut ?? { ok: false, error } });
    }
    dispatch();
  }

  function handOver(job: Job, lane: Lane): void {
    const slot = lane.freeSlots.pop()!;
    Atomics.store(lane.claims, slot, CLAIM_HANDED);
    const exec: Exec = { job, lane, slot, withdrawn: false };
    lane.execs.add(exec);
    job.exec = exec;
    job.deadline = Date.now() + job.limitMs;
    const message: StepMessage = { ...job.task, taskId: job.taskId, slot };
    // No AbortSignal for piscina: aborts go out on the pool's channel (see step-thread.ts).
    (lane.piscina.run(message) as Promise<StepReply>).then(
      (reply) => answered(exec, reply),
      (err: unknown) => refused(exec, err),
    );
  }

  /** Takes a step handed to a lane back, if its thread has not started it. */
  function withdraw(exec: Exec): boolean {
    if (exec.withdrawn) return false;
    const was = Atomics.compareExchange(exec.lane.claims, exec.slot, CLAIM_HANDED, CLAIM_WITHDRAWN);
    if (was !== CLAIM_HANDED) return false;
    exec.withdrawn = true;
    return true;
  }

  /**
   * Keeps `maxThreads` threads answering: one starts (one at a time, up to 2 × maxThreads in all)
   * while fewer answer, whether they crashed, were taken away, recycled or are blocked. A thread
   * takes a second or more to start (it loads the workflows), so they are started ahead.
   */
  function replenish(now: number): void {
    // One at a time: a thread still starting counts as answering.
    const { answering, regular } = regularLanes(lanes, now);
    if (answering < maxThreads && regular < maxLanes) newLane('regular');
  }

  function quarantineLane(): Lane | undefined {
    let count = 0;
    for (const lane of lanes) {
      if (lane.kind !== 'quarantine') continue;
      count++;
      if (lane.state === 'open' && lane.execs.size === 0) return lane;
    }
    return count < maxThreads ? newLane('quarantine') : undefined;
  }

  function dispatch(): void {
    if (closing) return;
    const now = Date.now();
    replenish(now);
    while (suspects.length > 0) {
      const lane = quarantineLane();
      if (!lane) break;
      handOver(suspects.shift()!, lane);
    }
    while (queue.length > 0) {
      const lane = pickLane(lanes, now, maxThreads);
      if (!lane) break;
      handOver(queue.shift()!, lane);
    }
  }

  const announce = (job: Job) => {
    const notice: AbortNotice = job.timedOut
      ? { taskId: job.taskId, reason: 'timeout', limitSeconds: job.limitMs / 1000 }
      : { taskId: job.taskId, reason: 'aborted' };
    aborts.postMessage(notice);
  };

  function tick(): void {
    const now = Date.now();
    for (const lane of lanes) {
      if (lane.state === 'dead') continue;
      // A thread that stopped answering keeps the steps it started, not the ones still queued.
      if (!answers(lane, now)) {
        for (const exec of lane.execs)
          if (exec.job.exec === exec && withdraw(exec)) again(exec.job);
      }
      if (lane.execs.size === 0) {
        const idle = now - lane.idleSince;
        if (lane.state === 'draining') kill(lane);
        else if (lane.kind === 'quarantine' ? idle > EXTRA_IDLE_MS : retiring(idle, now))
          kill(lane);
      }
    }
    for (const job of jobs) {
      const exec = job.exec;
      if (!exec || exec.withdrawn) continue;
      if (!job.timedOut && now >= job.deadline) {
        const seconds = job.limitMs / 1000;
        job.timedOut = failed('StepTimeout', `the step ran past its time limit of ${seconds} s`);
        job.graceAt ??= now + grace;
      }
      if (job.graceAt === undefined) continue;
      if (now >= job.graceAt) terminate(exec.lane);
      // Repeated until the step ends: a thread still starting, or a message on its way, would
      // miss a single announcement (threads ignore repeats).
      else announce(job);
    }
    dispatch();
  }

  /** Whether an idle regular lane retires: one beyond `maxThreads` answering, once idle a while. */
  function retiring(idle: number, now: number): boolean {
    return idle > EXTRA_IDLE_MS && regularLanes(lanes, now).answering > maxThreads;
  }

  const ticker = setInterval(tick, TICK_MS);
  ticker.unref();
  // The threads start at once: each loads the workflows before its first step.
  for (let i = 0; i < maxThreads; i++) newLane('regular');

  return {
    run(task, signal) {
      if (closing) return Promise.reject(new StepAbandonedError('the step pool is closed'));
      return new Promise<StepOutcome>((resolve, reject) => {
        const limitSeconds = task.timeLimitSeconds;
        const job: Job = {
          taskId: ++nextTaskId,
          task,
          signal,
          onAbort: () => aborted(job),
          resolve,
          reject,
          exec: undefined,
          limitMs: limitSeconds && limitSeconds > 0 ? limitSeconds * 1000 : defaultLimitMs,
          deadline: Infinity,
          aborted: false,
          suspect: false,
          crashes: 0,
          done: false,
        };
        jobs.add(job);
        if (signal.aborted) {
          settle(job, { error: new StepAbandonedError('the step was aborted before it started') });
          return;
        }
        signal.addEventListener('abort', job.onAbort, { once: true });
        queue.push(job);
        dispatch();
      });
    },
    close() {
      // Called once the runner has handed back its processes: a step still running now was
      // abandoned, so its thread is terminated rather than waited for.
      closing ??= (async () => {
        clearInterval(ticker);
        for (const job of [...jobs])
          settle(job, { error: new StepAbandonedError('the step pool closed') });
        queue = [];
        suspects = [];
        const all = [...lanes].map((lane) => {
          lane.state = 'dead';
          return lane.piscina.destroy();
        });
        lanes.clear();
        await Promise.allSettled(all);
        aborts.close();
      })();
      return closing;
    },
  };

  function aborted(job: Job): void {
    if (job.done) return;
    job.aborted = true;
    const exec = job.exec;
    // Not started yet: it never will.
    if (!exec || withdraw(exec)) {
      queue = queue.filter((j) => j !== job);
      suspects = suspects.filter((j) => j !== job);
      settle(job, { error: new StepAbandonedError('the step was aborted before it started') });
      return;
    }
    job.graceAt ??= Date.now() + grace;
    announce(job);
  }
}

/** The step pool as configured (WORKFLOWS_DIR, STEP_THREADS, STEPS_PER_THREAD, STEP_…). */
export function stepPoolFromConfig(
  config: {
    WORKFLOWS_DIR: string;
    STEP_THREADS: number;
    STEPS_PER_THREAD: number;
    STEP_TIME_LIMIT_SECONDS: number;
    STEP_CRASH_LIMIT: number;
    STEP_THREAD_MEMORY_MB: number;
    STEP_THREAD_MAX_HEAP_MB?: number | undefined;
  },
  connectionString?: string,
): StepPool {
  return createStepPool({
    workflowsDir: config.WORKFLOWS_DIR,
    ...(connectionString ? { connectionString } : {}),
    maxThreads: config.STEP_THREADS,
    stepsPerThread: config.STEPS_PER_THREAD,
    timeLimitSeconds: config.STEP_TIME_LIMIT_SECONDS,
    crashLimit: config.STEP_CRASH_LIMIT,
    threadMemoryMb: config.STEP_THREAD_MEMORY_MB,
    maxHeapMb: config.STEP_THREAD_MAX_HEAP_MB,
  });
}

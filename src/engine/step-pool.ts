// The step pool: step bodies run on worker threads, each step isolated from the others as far as
// a thread allows (README, "Step isolation"). The pool is a set of lanes, each a piscina instance
// with exactly one thread, and a scheduler here, in the caller's thread, that routes every step to
// a lane:
// - each thread beats (a timestamp in shared memory, every BEAT_MS); a step goes only to a lane
//   whose thread beat lately and has room, so a step that blocks its thread (CPU-bound) delays
//   only the steps already running beside it. Steps handed to a thread that stops beating, and
//   not started yet, are withdrawn (a compare-and-set in shared memory: a step starts at most once
//   per hand-over) and go elsewhere; when no thread answers, extra lanes start (up to
//   2 × maxThreads) and retire once idle;
// - a step past its time limit, or aborted, sees its signal fire; still running a grace period
//   later, its thread is terminated and replaced. It fails with StepTimeout (past its limit) or
//   is abandoned (StepAbandonedError, after an abort); the other steps of that thread run again
//   on another lane, their callers none the wiser (step bodies are at-least-once anyway);
// - a thread that crashes (out of memory, an exit, an uncaught error) makes every step started on
//   it a suspect: each runs again alone, on a quarantine lane that runs one step at a time, so a
//   crash alone is the step's own. After `crashLimit` crashes alone the step fails (StepCrashed,
//   with the crash's reason); the innocent end normally. Steps not started yet just go elsewhere;
// - after each step its thread reports its heap; a thread over `threadMemoryMb` takes no new steps
//   and is replaced once its steps end, so memory a step kept is given back.
import { randomUUID } from 'node:crypto';
import { BroadcastChannel, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { StepError, StepOutcome, StepTask } from './types.ts';

/** Runs step bodies off the caller's event loop. */
export interface StepPool {
  /**
   * Runs one step; `signal` tells the step to stop (it sees its own AbortSignal fire). Resolves
   * with the step's outcome (a failure named StepTimeout or StepCrashed when the pool stopped
   * it); rejects with StepAbandonedError after an abort the step ignored.
   */
  run(task: StepTask, signal: AbortSignal): Promise<StepOutcome>;
  /** Terminates the threads; call once the runner has stopped (a step still running is abandoned). */
  close(): Promise<void>;
}

export interface StepPoolOptions {
  workflowsDir: string;
  /** The orchestrator's database, for the built-in tasks (see system.ts). */
  connectionString?: string;
  /**
   * Threads that take steps. While some do not answer (a CPU-bound step holds them), extra
   * threads start, up to twice as many in all.
   */
  maxThreads: number;
  /**
   * Steps one thread runs at once. Steps that wait on I/O (an API call, a sleep) share a thread;
   * a CPU-bound step delays only the steps already on its thread. Default 16.
   */
  stepsPerThread?: number;
  /**
   * After an abort or past its time limit, how long a step may take to stop before its thread is
   * terminated. Default 5000 ms.
   */
  abortGraceMs?: number;
  /** Seconds a step may run unless it declares its own `timeLimitSeconds`. Default 3600. */
  timeLimitSeconds?: number;
  /** Crashes of its thread, running alone, after which a step fails with StepCrashed. Default 3. */
  crashLimit?: number;
  /** A thread whose heap (used + external) exceeds this after a step is replaced. Default 512 MB. */
  threadMemoryMb?: number;
  /** Each thread's `maxOldGenerationSizeMb`. Default: Node.js's own limit. */
  maxHeapMb?: number | undefined;
}

/** What a lane's thread receives: the step, the id its abort is announced under, its claim slot. */
export interface StepMessage extends StepTask {
  taskId: number;
  /** Index in the lane's claims: the thread starts the step only if it wins the claim. */
  slot: number;
}

/** What a thread answers: the outcome and its heap after the step, or that the step was withdrawn. */
export type StepReply = { withdrawn: true } | { outcome: StepOutcome; heapBytes: number };

/** An abort announced to the threads: the task, and why. */
export interface AbortNotice {
  taskId: number;
  /** `timeout`: past its time limit of `limitSeconds`; else aborted (by a user, a lost lease, a shutdown). */
  reason: 'aborted' | 'timeout';
  limitSeconds?: number;
}

/** The data every thread starts with. */
export interface StepThreadData {
  workflowsDir: string;
  connectionString?: string | undefined;
  /** Name of the BroadcastChannel on which aborts are announced (AbortNotice). */
  abortChannel: string;
  /** A BigInt64Array of one: the thread's last beat (Date.now()), written every `beatMs`. */
  beat: SharedArrayBuffer;
  beatMs: number;
  /** An Int32Array, one per slot: CLAIM_HANDED, then CLAIM_STARTED (thread) or CLAIM_WITHDRAWN (pool). */
  claims: SharedArrayBuffer;
}

export const CLAIM_HANDED = 0;
export const CLAIM_STARTED = 1;
export const CLAIM_WITHDRAWN = 2;

/** A step that did not stop within the grace period after its abort; its outcome is discarded. */
export class StepAbandonedError extends Error {
  override name = 'StepAbandonedError';
}

/** How often a thread beats, and after how long without a beat it counts as not answering. */
const BEAT_MS = 50;
const SILENT_MS = 300;
/** A thread still starting (no beat yet) counts as answering for this long. */
const START_MS = 30_000;
/** The scheduler's tick: withdrawals, time limits, graces, retirements. */
const TICK_MS = 50;
/** Extra and quarantine lanes retire once idle this long. */
const EXTRA_IDLE_MS = 5_000;

const threadFile = new URL('./step-thread.ts', import.meta.url).href;

interface Lane {
  id: number;
  /** `quarantine`: one step at a time, for the suspects of a crash. */
  kind: 'regular' | 'quarantine';
  piscina: Piscina;
  worker: Worker | undefined;
  beat: BigInt64Array;
  claims: Int32Array;
  freeSlots: number[];
  /** Hand-overs not answered yet, withdrawn ones included (they hold their slot until answered). */
  execs: Set<Exec>;
  /** `draining`: over its memory limit, takes no new steps; `dead`: terminated or crashed. */
  state: 'open' | 'draining' | 'dead';
  createdAt: number;
  idleSince: number;
  /** The thread's error, once it had one (a crash). */
  crashError?: unknown;
  /** Whether a step ever ended on it (a thread that crashes before may not be able to start). */
  ran: boolean;
}

/** One hand-over of a step to a lane. */
interface Exec {
  job: Job;
  lane: Lane;
  slot: number;
  withdrawn: boolean;
}

interface Job {
  taskId: number;
  task: StepTask;
  signal: AbortSignal;
  onAbort: () => void;
  resolve: (outcome: StepOutcome) => void;
  reject: (err: Error) => void;
  /** Where it runs now; undefined while queued. */
  exec: Exec | undefined;
  limitMs: number;
  /** When its current run passes its time limit. */
  deadline: number;
  /** Set once past its time limit: its outcome, whatever the step does now. */
  timedOut?: StepOutcome;
  aborted: boolean;
  /** After an abort or its time limit: when its thread is terminated if it still runs. */
  graceAt?: number;
  /** Runs alone (on a quarantine lane) until it ends: it was on a thread that crashed. */
  suspect: boolean;
  /** Crashes of its thread while it ran alone there. */
  crashes: number;
  done: boolean;
}

const failed = (name: string, message: string): StepOutcome => ({
  ok: false,
  error: { outcome: 'failed', name, message },
});

/** A crash's reason: its code (ERR_WORKER_OUT_OF_MEMORY) or name, and message. */
function crashReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const head = typeof code === 'string' ? code : err.name;
  return err.message && !err.message.startsWith(head)
    ? `${head}: ${err.message}`
    : err.message || head;
}

/** A pool of one-thread piscina lanes; see the top of this file. */
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
    const capacity = kind === 'quarantine' ? 1 : stepsPerThread;
    const beat = new SharedArrayBuffer(8);
    const claims = new SharedArrayBuffer(4 * capacity);
    const workerData: StepThreadData = {
      workflowsDir: opts.workflowsDir,
      connectionString: opts.connectionString,
      abortChannel,
      beat,
      beatMs: BEAT_MS,
      claims,
    };
    const piscina = new Piscina({
      filename: threadFile,
      minThreads: 1,
      maxThreads: 1,
      concurrentTasksPerWorker: capacity,
      // A step thread must live like any Node.js event loop between its tasks: with the default
      // ('sync') piscina parks an idle thread in Atomics.wait, so it never sees a server close an
      // idle kept-alive socket, and the next step's fetch reuses the dead socket (UND_ERR_SOCKET,
      // EPIPE); timers and unhandled rejections also wait for the next task, and so would the
      // thread's beat. 'async' waits with Atomics.waitAsync instead, leaving the loop running
      // (test/step-pool.test.ts).
      atomics: 'async',
      workerData,
      ...(opts.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb } } : {}),
    });
    const now = Date.now();
    const lane: Lane = {
      id: ++nextLaneId,
      kind,
      piscina,
      worker: piscina.threads[0],
      beat: new BigInt64Array(beat),
      claims: new Int32Array(claims),
      freeSlots: Array.from({ length: capacity }, (_, i) => capacity - 1 - i),
      execs: new Set(),
      state: 'open',
      createdAt: now,
      idleSince: now,
      ran: false,
    };
    // A thread's error with no task on it would otherwise be thrown: the lane's own listeners
    // below see it.
    piscina.on('error', () => undefined);
    lane.worker?.on('error', (err) => (lane.crashError ??= err));
    lane.worker?.on('exit', (code) => {
      if (lane.state !== 'dead')
        crashed(lane, lane.crashError ?? new Error(`the step thread exited with code ${code}`));
    });
    lanes.add(lane);
    return lane;
  }

  /** Whether the lane's thread beat lately (or is still starting). */
  function answers(lane: Lane, now: number): boolean {
    const last = Number(Atomics.load(lane.beat, 0));
    return last === 0 ? now - lane.createdAt < START_MS : now - last < SILENT_MS;
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
   * The lane for the next step: of the first `maxThreads` answering lanes (the oldest), the least
   * busy with room; else an extra one with room (so that extras go idle and retire once the
   * others answer again); else one still starting.
   */
  function laneForNext(now: number): Lane | undefined {
    let best: Lane | undefined;
    let spare: Lane | undefined;
    let starting: Lane | undefined;
    let answering = 0;
    for (const lane of lanes) {
      if (lane.kind !== 'regular' || lane.state !== 'open' || !answers(lane, now)) continue;
      answering++;
      if (lane.freeSlots.length === 0) continue;
      if (Atomics.load(lane.beat, 0) === 0n) starting ??= lane;
      else if (answering <= maxThreads) {
        if (!best || lane.execs.size < best.execs.size) best = lane;
      } else if (!spare || lane.execs.size < spare.execs.size) spare = lane;
    }
    return best ?? spare ?? starting;
  }

  /**
   * Keeps `maxThreads` threads answering: one starts (one at a time, up to 2 × maxThreads in all)
   * while fewer answer, whether they crashed, were taken away, recycled or are blocked. A thread
   * takes a second or more to start (it loads the workflows), so they are started ahead.
   */
  function replenish(now: number): void {
    let answering = 0;
    let regular = 0;
    for (const lane of lanes) {
      if (lane.kind !== 'regular') continue;
      regular++;
      if (lane.state !== 'open' || !answers(lane, now)) continue;
      // One at a time: a thread still starting counts as answering.
      answering++;
    }
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
      const lane = laneForNext(now);
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
    if (idle <= EXTRA_IDLE_MS) return false;
    let answering = 0;
    for (const l of lanes)
      if (l.kind === 'regular' && l.state === 'open' && answers(l, now)) answering++;
    return answering > maxThreads;
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

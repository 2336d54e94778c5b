// The step pool's lanes (step-pool.ts routes steps to them; step-thread.ts runs them): what a
// lane is, a step's hand-over to it, the messages between the pool and a lane's thread, how a
// lane is opened and chosen. The design:
//
// Step bodies run on worker threads, each step isolated from the others as far as
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
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { StepOutcome, StepTask } from './types.ts';

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

/** A step that did not stop within the grace period after its abort; its outcome is discarded. */
export class StepAbandonedError extends Error {
  override name = 'StepAbandonedError';
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

/** How often a thread beats, and after how long without a beat it counts as not answering. */
export const BEAT_MS = 50;
export const SILENT_MS = 300;
/** A thread still starting (no beat yet) counts as answering for this long. */
export const START_MS = 30_000;
/** The scheduler's tick: withdrawals, time limits, graces, retirements. */
export const TICK_MS = 50;
/** Extra and quarantine lanes retire once idle this long. */
export const EXTRA_IDLE_MS = 5_000;

const threadFile = new URL('./step-thread.ts', import.meta.url).href;

export interface Lane {
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
export interface Exec {
  job: Job;
  lane: Lane;
  slot: number;
  withdrawn: boolean;
}

export interface Job {
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

export const failed = (name: string, message: string): StepOutcome => ({
  ok: false,
  error: { outcome: 'failed', name, message },
});

/** A crash's reason: its code (ERR_WORKER_OUT_OF_MEMORY) or name, and message. */
export function crashReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const head = typeof code === 'string' ? code : err.name;
  return err.message && !err.message.startsWith(head)
    ? `${head}: ${err.message}`
    : err.message || head;
}

/** What a lane is opened with. */
export interface LaneOptions {
  id: number;
  /** Steps its thread runs at once (1 for a quarantine lane). */
  capacity: number;
  workflowsDir: string;
  connectionString?: string | undefined;
  abortChannel: string;
  maxHeapMb?: number | undefined;
  /** Its thread ended while the lane was alive (a crash): with the thread's error. */
  onExit: (err: unknown) => void;
}

/** Opens a lane: a piscina instance with one thread, which starts loading the workflows now. */
export function openLane(kind: Lane['kind'], o: LaneOptions): Lane {
  const capacity = o.capacity;
  const beat = new SharedArrayBuffer(8);
  const claims = new SharedArrayBuffer(4 * capacity);
  const workerData: StepThreadData = {
    workflowsDir: o.workflowsDir,
    connectionString: o.connectionString,
    abortChannel: o.abortChannel,
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
    ...(o.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: o.maxHeapMb } } : {}),
  });
  const now = Date.now();
  const lane: Lane = {
    id: o.id,
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
      o.onExit(lane.crashError ?? new Error(`the step thread exited with code ${code}`));
  });
  return lane;
}

/** Whether the lane's thread beat lately (or is still starting). */
export function answers(lane: Lane, now: number): boolean {
  const last = Number(Atomics.load(lane.beat, 0));
  return last === 0 ? now - lane.createdAt < START_MS : now - last < SILENT_MS;
}

/**
 * The lane for the next step: of the first `maxThreads` answering lanes (the oldest), the least
 * busy with room; else an extra one with room (so that extras go idle and retire once the
 * others answer again); else one still starting.
 */
export function pickLane(lanes: Iterable<Lane>, now: number, maxThreads: number): Lane | undefined {
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

/** Regular lanes: how many, and how many of them answer (or are still starting) and are open. */
export function regularLanes(
  lanes: Iterable<Lane>,
  now: number,
): { answering: number; regular: number } {
  let answering = 0;
  let regular = 0;
  for (const lane of lanes) {
    if (lane.kind !== 'regular') continue;
    regular++;
    if (lane.state === 'open' && answers(lane, now)) answering++;
  }
  return { answering, regular };
}

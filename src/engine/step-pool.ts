import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { StepOutcome, StepTask } from './types.ts';

/** Runs step bodies off the caller's event loop. */
export interface StepPool {
  /** Runs one step; `signal` tells the step to stop (it sees its own AbortSignal fire). */
  run(task: StepTask, signal: AbortSignal): Promise<StepOutcome>;
  /** Terminates the threads; call once the runner has stopped (a step still running is abandoned). */
  close(): Promise<void>;
}

export interface StepPoolOptions {
  workflowsDir: string;
  /** The orchestrator's database, for the built-in tasks (see system.ts). */
  connectionString?: string;
  /** Threads. */
  maxThreads: number;
  /**
   * Steps one thread runs at once. Steps that wait on I/O (an API call, a sleep) share a thread;
   * a CPU-bound step holds its thread, never the caller's event loop. Default 16.
   */
  stepsPerThread?: number;
  /** After an abort, how long a step may take to notice before its thread is terminated. Default 5000 ms. */
  abortGraceMs?: number;
}

/** What the pool's threads receive: the step, and the id its abort is announced under. */
export interface StepMessage extends StepTask {
  taskId: number;
}

/** The data every thread starts with. */
export interface StepThreadData {
  workflowsDir: string;
  connectionString?: string | undefined;
  /** Name of the BroadcastChannel on which aborted task ids are announced. */
  abortChannel: string;
}

/** A step that did not stop within the grace period after its abort; its outcome is discarded. */
export class StepAbandonedError extends Error {
  override name = 'StepAbandonedError';
}

const threadFile = new URL('./step-thread.ts', import.meta.url).href;

/**
 * A piscina pool of worker threads that each load the workflows once. Aborts go out on one
 * BroadcastChannel per pool: a MessageChannel per task, created and transferred with every step,
 * cost more than the no-op steps themselves.
 */
export function createStepPool(opts: StepPoolOptions): StepPool {
  const workerData: StepThreadData = {
    workflowsDir: opts.workflowsDir,
    connectionString: opts.connectionString,
    abortChannel: `step-abort:${randomUUID()}`,
  };
  const piscina = new Piscina({
    filename: threadFile,
    minThreads: Math.min(1, opts.maxThreads),
    maxThreads: opts.maxThreads,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: opts.stepsPerThread ?? 16,
    // A step thread must live like any Node.js event loop between its tasks: with the default
    // ('sync') piscina parks an idle thread in Atomics.wait, so it never sees a server close an
    // idle kept-alive socket, and the next step's fetch reuses the dead socket (UND_ERR_SOCKET,
    // EPIPE); timers and unhandled rejections also wait for the next task. 'async' waits with
    // Atomics.waitAsync instead, leaving the loop running (test/step-pool.test.ts).
    atomics: 'async',
    workerData,
  });
  const aborts = new BroadcastChannel(workerData.abortChannel);
  aborts.unref();
  const grace = opts.abortGraceMs ?? 5_000;
  let nextTaskId = 0;
  let closing: Promise<void> | undefined;
  return {
    async run(task, signal) {
      const taskId = ++nextTaskId;
      let timer: NodeJS.Timeout | undefined;
      let repeat: NodeJS.Timeout | undefined;
      let abandon: ((err: Error) => void) | undefined;
      const abandoned = new Promise<never>((_, reject) => (abandon = reject));
      abandoned.catch(() => undefined);
      const onAbort = () => {
        // A broadcast reaches only threads listening now: one still starting, or a task still
        // queued, would miss it. Repeated until the step settles (threads ignore repeats).
        aborts.postMessage(taskId);
        repeat = setInterval(() => aborts.postMessage(taskId), 50);
        // A step that ignores its signal is abandoned after the grace period: its result, if it
        // ever comes, is discarded. (Its thread is not terminated: other steps share it.)
        timer = setTimeout(
          () => abandon?.(new StepAbandonedError(`step ignored its abort for ${grace} ms`)),
          grace,
        );
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      try {
        const message: StepMessage = { ...task, taskId };
        // No AbortSignal for piscina: a task with one gets a thread of its own, and steps that
        // wait on I/O could no longer share threads.
        return await Promise.race([piscina.run(message) as Promise<StepOutcome>, abandoned]);
      } finally {
        signal.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        clearInterval(repeat);
      }
    },
    close() {
      // Called once the runner has handed back its processes: a step still running now was
      // abandoned, so its thread is terminated rather than waited for.
      closing ??= piscina.destroy().finally(() => aborts.close());
      return closing;
    },
  };
}

/** The step pool as configured by WORKFLOWS_DIR, STEP_THREADS and STEPS_PER_THREAD. */
export function stepPoolFromConfig(
  config: {
    WORKFLOWS_DIR: string;
    STEP_THREADS: number;
    STEPS_PER_THREAD: number;
  },
  connectionString?: string,
): StepPool {
  return createStepPool({
    workflowsDir: config.WORKFLOWS_DIR,
    ...(connectionString ? { connectionString } : {}),
    maxThreads: config.STEP_THREADS,
    stepsPerThread: config.STEPS_PER_THREAD,
  });
}

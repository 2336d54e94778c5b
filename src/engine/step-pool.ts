import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { StepOutcome, StepTask } from './types.ts';

/** Runs step bodies off the caller's event loop. */
export interface StepPool {
  /** Runs one step; `signal` tells the step to stop (it sees its own AbortSignal fire). */
  run(task: StepTask, signal: AbortSignal): Promise<StepOutcome>;
  close(): Promise<void>;
}

export interface StepPoolOptions {
  workflowsDir: string;
  /** Threads. */
  maxThreads: number;
  /** After an abort, how long a step may take to notice before its thread is terminated. Default 5000 ms. */
  abortGraceMs?: number;
}

/** What the pool's threads receive: the step, and the id its abort is announced under. */
export interface StepMessage extends StepTask {
  taskId: number;
}

/** The data every thread starts with. */
export interface StepWorkerData {
  workflowsDir: string;
  /** Name of the BroadcastChannel on which aborted task ids are announced. */
  abortChannel: string;
}

const workerFile = new URL('./step-worker.ts', import.meta.url).href;

/**
 * A piscina pool of worker threads that each load the workflows once. Aborts go out on one
 * BroadcastChannel per pool: a MessageChannel per task, created and transferred with every step,
 * cost more than the no-op steps themselves.
 */
export function createStepPool(opts: StepPoolOptions): StepPool {
  const workerData: StepWorkerData = {
    workflowsDir: opts.workflowsDir,
    abortChannel: `step-abort:${randomUUID()}`,
  };
  const piscina = new Piscina({
    filename: workerFile,
    minThreads: Math.min(1, opts.maxThreads),
    maxThreads: opts.maxThreads,
    idleTimeout: 60_000,
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
      const hardStop = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      let repeat: NodeJS.Timeout | undefined;
      const onAbort = () => {
        // A broadcast reaches only threads listening now: one still starting, or a task still
        // queued, would miss it. Repeated until the step settles (threads ignore repeats).
        aborts.postMessage(taskId);
        repeat = setInterval(() => aborts.postMessage(taskId), 50);
        timer = setTimeout(() => hardStop.abort(), grace);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      try {
        const message: StepMessage = { ...task, taskId };
        return (await piscina.run(message, { signal: hardStop.signal })) as StepOutcome;
      } finally {
        signal.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        clearInterval(repeat);
      }
    },
    close() {
      closing ??= piscina.close().finally(() => aborts.close());
      return closing;
    },
  };
}

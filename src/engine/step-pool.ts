import { MessageChannel } from 'node:worker_threads';
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

const workerFile = new URL('./step-worker.ts', import.meta.url).href;

/** A piscina pool of worker threads that each load the workflows once. */
export function createStepPool(opts: StepPoolOptions): StepPool {
  const piscina = new Piscina({
    filename: workerFile,
    minThreads: Math.min(1, opts.maxThreads),
    maxThreads: opts.maxThreads,
    idleTimeout: 60_000,
    workerData: { workflowsDir: opts.workflowsDir },
  });
  const grace = opts.abortGraceMs ?? 5_000;
  let closing: Promise<void> | undefined;
  return {
    async run(task, signal) {
      const { port1, port2 } = new MessageChannel();
      const hardStop = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        port1.postMessage('abort');
        timer = setTimeout(() => hardStop.abort(), grace);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      try {
        return (await piscina.run(
          { ...task, abortPort: port2 },
          { transferList: [port2], signal: hardStop.signal },
        )) as StepOutcome;
      } finally {
        signal.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        port1.close();
      }
    },
    close() {
      closing ??= piscina.close();
      return closing;
    },
  };
}

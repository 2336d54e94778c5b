// The test kit's step pool: steps run in the test's own thread, with the same context, outcome,
// time limit and abort handling as on the engine's step threads (what only threads can do, take a
// thread away from a step, crash alone, give memory back, is left to `steps: 'threads'`).
import type { Registry } from '../engine/registry.ts';
import { runStepTask } from '../engine/run-step.ts';
import { StepAbandonedError, type StepPool } from '../engine/step-pool.ts';
import type { StepOutcome } from '../engine/types.ts';

/** Steps run here, in this thread, with the same context and outcome as on the step pool. */
export function inProcessStepPool(
  registry: Registry,
  abortGraceMs: number,
  timeLimitSeconds = 3_600,
): StepPool {
  return {
    async run(task, signal) {
      const timers: NodeJS.Timeout[] = [];
      let onAbort: (() => void) | undefined;
      // The step's own signal: the runner's, or its time limit.
      const own = new AbortController();
      const limit = task.timeLimitSeconds ?? timeLimitSeconds;
      let timedOut: StepOutcome | undefined;
      // A step that ignores its abort is abandoned after the grace period, as on the pool; one past
      // its time limit fails with StepTimeout, once it stopped or after the grace period.
      const stopped = new Promise<StepOutcome>((resolve, reject) => {
        onAbort = () => {
          own.abort(signal.reason);
          timers.push(
            setTimeout(
              () => reject(new StepAbandonedError(`step ignored its abort for ${abortGraceMs} ms`)),
              abortGraceMs,
            ),
          );
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        timers.push(
          setTimeout(
            () => {
              const message = `the step ran past its time limit of ${limit} s`;
              const outcome: StepOutcome = {
                ok: false,
                error: { outcome: 'failed', name: 'StepTimeout', message },
              };
              timedOut = outcome;
              const reason = new Error(message);
              reason.name = 'StepTimeout';
              own.abort(reason);
              timers.push(setTimeout(() => resolve(outcome), abortGraceMs));
            },
            Math.min(limit * 1000, 2 ** 31 - 1),
          ),
        );
      });
      stopped.catch(() => undefined);
      // Copies both ways, as across a thread: a step never shares objects with the runner.
      const running = runStepTask(registry, structuredClone(task), own.signal);
      try {
        const outcome = await Promise.race([running, stopped]);
        // Past its time limit it failed, whatever it did then.
        return structuredClone(timedOut ?? outcome);
      } finally {
        for (const t of timers) clearTimeout(t);
        if (onAbort) signal.removeEventListener('abort', onAbort);
      }
    },
    close: async () => {},
  };
}

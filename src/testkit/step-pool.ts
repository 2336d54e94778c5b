// The test kit's step pool: steps run in the test's own thread, with the same context, outcome
// and abort handling as on the engine's step threads.
import type { Registry } from '../engine/registry.ts';
import { runStepTask } from '../engine/run-step.ts';
import { StepAbandonedError, type StepPool } from '../engine/step-pool.ts';

/** Steps run here, in this thread, with the same context and outcome as on the step pool. */
export function inProcessStepPool(registry: Registry, abortGraceMs: number): StepPool {
  return {
    async run(task, signal) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      // A step that ignores its abort is abandoned after the grace period, as on the pool.
      const abandoned = new Promise<never>((_, reject) => {
        onAbort = () => {
          timer = setTimeout(
            () => reject(new StepAbandonedError(`step ignored its abort for ${abortGraceMs} ms`)),
            abortGraceMs,
          );
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      abandoned.catch(() => undefined);
      try {
        // Copies both ways, as across a thread: a step never shares objects with the runner.
        const outcome = await Promise.race([
          runStepTask(registry, structuredClone(task), signal),
          abandoned,
        ]);
        return structuredClone(outcome);
      } finally {
        clearTimeout(timer);
        if (onAbort) signal.removeEventListener('abort', onAbort);
      }
    },
    close: async () => {},
  };
}

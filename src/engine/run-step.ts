// Runs one step definition for a task: the body of a step, a retry step or a callback step's
// action, with the context a step receives. Used wherever steps run: the step pool's threads
// (step-thread.ts) and the test kit's in-process pool (src/testkit/step-pool.ts).
import { toStepError } from './errors.ts';
import type { Registry } from './registry.ts';
import type { State, StepOutcome, StepTask } from './types.ts';

/** Runs step `task.index` of `task.workflow`; never throws (an error is the outcome). */
export async function runStepTask(
  registry: Registry,
  task: StepTask,
  signal: AbortSignal,
): Promise<StepOutcome> {
  try {
    const def = registry.require(task.workflow).steps[task.index];
    const ctx = {
      state: task.state,
      processId: task.processId,
      attempt: task.attempt,
      signal,
    };
    let result: unknown;
    if (def?.kind === 'step' || def?.kind === 'retry') result = await def.run(ctx);
    else if (def?.kind === 'callback' && task.callbackUrl !== undefined)
      result = await def.action({ ...ctx, callbackUrl: task.callbackUrl });
    else throw new Error(`step ${task.index} of ${task.workflow} is not runnable`);
    if (
      result !== undefined &&
      (typeof result !== 'object' || result === null || Array.isArray(result))
    ) {
      throw new TypeError(
        `step ${def.name} must return an object or nothing, got ${typeof result}`,
      );
    }
    return { ok: true, delta: (result ?? {}) as State };
  } catch (err) {
    return { ok: false, error: toStepError(err) };
  }
}

// Runs inside a piscina worker thread: loads the workflows once and runs one step per task.
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'piscina';
import { toStepError } from './errors.ts';
import { loadRegistry } from './registry.ts';
import type { StepOutcome, StepTask } from './types.ts';

const registry = await loadRegistry((workerData as { workflowsDir: string }).workflowsDir);

export default async function runStep(
  task: StepTask & { abortPort: MessagePort },
): Promise<StepOutcome> {
  const controller = new AbortController();
  task.abortPort.once('message', () => controller.abort(new Error('process aborted')));
  try {
    const def = registry.require(task.workflow).steps[task.index];
    if (def?.kind !== 'step')
      throw new Error(`step ${task.index} of ${task.workflow} is not runnable`);
    const result = await def.run({
      state: task.state,
      processId: task.processId,
      attempt: task.attempt,
      signal: controller.signal,
    });
    if (
      result !== undefined &&
      (typeof result !== 'object' || result === null || Array.isArray(result))
    ) {
      throw new TypeError(
        `step ${def.name} must return an object or nothing, got ${typeof result}`,
      );
    }
    return { ok: true, delta: result ?? {} };
  } catch (err) {
    return { ok: false, error: toStepError(err) };
  } finally {
    task.abortPort.close();
  }
}

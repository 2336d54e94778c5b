// Runs inside a piscina worker thread: loads the workflows once and runs one step per task.
import { BroadcastChannel } from 'node:worker_threads';
import { workerData } from 'piscina';
import { toStepError } from './errors.ts';
import { loadRegistry } from './registry.ts';
import { configureSystem } from './system.ts';
import type { StepMessage, StepWorkerData } from './step-pool.ts';
import type { State, StepOutcome } from './types.ts';

const data = workerData as StepWorkerData;
const registry = await loadRegistry(data.workflowsDir);
configureSystem({ connectionString: data.connectionString, registry });

/** Steps running in this thread, by task id, so an announced abort reaches the right one. */
const running = new Map<number, AbortController>();
/** Aborts announced for tasks not running here (yet): a queued task may start here later. */
const announced = new Set<number>();
const ANNOUNCED_KEPT = 1_000;
const aborts = new BroadcastChannel(data.abortChannel);
aborts.unref();
aborts.onmessage = (event: unknown) => {
  const taskId = (event as { data: number }).data;
  const controller = running.get(taskId);
  if (controller) {
    controller.abort(new Error('process aborted'));
    return;
  }
  announced.add(taskId);
  if (announced.size > ANNOUNCED_KEPT) announced.delete(announced.values().next().value as number);
};

export default async function runStep(task: StepMessage): Promise<StepOutcome> {
  const controller = new AbortController();
  if (announced.delete(task.taskId)) controller.abort(new Error('process aborted'));
  running.set(task.taskId, controller);
  try {
    const def = registry.require(task.workflow).steps[task.index];
    const ctx = {
      state: task.state,
      processId: task.processId,
      attempt: task.attempt,
      signal: controller.signal,
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
  } finally {
    running.delete(task.taskId);
  }
}

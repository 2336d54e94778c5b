// Runs inside a piscina worker thread: loads the workflows once and runs one step per task.
import { BroadcastChannel } from 'node:worker_threads';
import { workerData } from 'piscina';
import { loadRegistry } from './registry.ts';
import { runStepTask } from './run-step.ts';
import { configureSystem } from './system.ts';
import type { StepMessage, StepThreadData } from './step-pool.ts';
import type { StepOutcome } from './types.ts';

const data = workerData as StepThreadData;
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
    return await runStepTask(registry, task, controller.signal);
  } finally {
    running.delete(task.taskId);
  }
}

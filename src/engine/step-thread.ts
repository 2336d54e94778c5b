// Runs inside a step pool lane's thread (piscina, one thread per lane): beats, loads the workflows
// once and runs one step per task, if the pool has not withdrawn it (see step-pool.ts).
import v8 from 'node:v8';
import { BroadcastChannel } from 'node:worker_threads';
import { workerData } from 'piscina';
import { loadRegistry } from './registry.ts';
import { runStepTask } from './run-step.ts';
import { configureSystem } from './system.ts';
import {
  CLAIM_HANDED,
  CLAIM_STARTED,
  type AbortNotice,
  type StepMessage,
  type StepReply,
  type StepThreadData,
} from './step-lanes.ts';

const data = workerData as StepThreadData;

const registry = await loadRegistry(data.workflowsDir);
configureSystem({ connectionString: data.connectionString, registry });

// The beat, once the workflows are loaded (until then the pool counts the thread as starting:
// loading blocks it for a while): as long as this thread's event loop turns, the pool hands it
// steps; a step that blocks it stops the beat.
const beat = new BigInt64Array(data.beat);
const beatNow = () => Atomics.store(beat, 0, BigInt(Date.now()));
beatNow();
setInterval(beatNow, data.beatMs).unref();
const claims = new Int32Array(data.claims);

/** Steps running in this thread, by task id, so an announced abort reaches the right one. */
const running = new Map<number, AbortController>();
/** Aborts announced for tasks not running here (yet): a queued task may start here later. */
const announced = new Map<number, AbortNotice>();
const ANNOUNCED_KEPT = 1_000;

/** What a step's signal fires with: the process aborted, or the step past its time limit. */
function reasonOf(notice: AbortNotice): Error {
  if (notice.reason !== 'timeout') return new Error('process aborted');
  const err = new Error(`the step ran past its time limit of ${notice.limitSeconds} s`);
  err.name = 'StepTimeout';
  return err;
}

const aborts = new BroadcastChannel(data.abortChannel);
aborts.unref();
aborts.onmessage = (event: unknown) => {
  const notice = (event as { data: AbortNotice }).data;
  const controller = running.get(notice.taskId);
  if (controller) {
    if (!controller.signal.aborted) controller.abort(reasonOf(notice));
    return;
  }
  announced.set(notice.taskId, notice);
  if (announced.size > ANNOUNCED_KEPT) announced.delete(announced.keys().next().value as number);
};

/** The heap this thread holds: what V8 uses, plus Buffers and other memory outside it. */
function heapBytes(): number {
  const stats = v8.getHeapStatistics() as v8.HeapInfo & { external_memory?: number };
  return stats.used_heap_size + (stats.external_memory ?? 0);
}

export default async function runStep(task: StepMessage): Promise<StepReply> {
  // The pool may have taken the step back (this thread was not answering): then it runs elsewhere.
  if (Atomics.compareExchange(claims, task.slot, CLAIM_HANDED, CLAIM_STARTED) !== CLAIM_HANDED)
    return { withdrawn: true };
  const controller = new AbortController();
  const notice = announced.get(task.taskId);
  if (notice) {
    announced.delete(task.taskId);
    controller.abort(reasonOf(notice));
  }
  running.set(task.taskId, controller);
  try {
    const outcome = await runStepTask(registry, task, controller.signal);
    return { outcome, heapBytes: heapBytes() };
  } finally {
    running.delete(task.taskId);
  }
}

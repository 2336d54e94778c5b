// Step isolation on the step pool's real threads: a step that ignores its abort, blocks its
// thread, runs past its time limit, exhausts its memory or keeps memory harms only itself
// (README, "Step isolation"). The workflows are test/fixtures/workflows-hostile.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createStepPool,
  StepAbandonedError,
  type StepPool,
  type StepPoolOptions,
} from '../src/engine/step-pool.ts';
import type { State, StepOutcome, StepTask } from '../src/engine/types.ts';
import { describeBothModes, useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

let pool: StepPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const hostile = fixtures('workflows-hostile');
const open = (options: Partial<StepPoolOptions> = {}) =>
  (pool = createStepPool({ workflowsDir: hostile, maxThreads: 1, ...options }));
const task = (workflow: string, state: State = {}, more: Partial<StepTask> = {}): StepTask => ({
  workflow,
  index: 0,
  state,
  processId: randomUUID(),
  attempt: 1,
  ...more,
});
const never = () => new AbortController().signal;
const delta = (o: StepOutcome) => {
  if (!o.ok) throw new Error(`step failed: ${o.error.name}: ${o.error.message}`);
  return o.delta;
};

describe('step isolation', () => {
  it('a step that ignores its abort gives its slot back: N+1 of them, then a normal step runs', async () => {
    // Two slots in all: one thread of two steps.
    const steps = open({ stepsPerThread: 2, abortGraceMs: 200 });
    delta(await steps.run(task('noop'), never())); // the thread is up
    const aborts = [0, 1, 2].map(() => new AbortController());
    const stubborn = aborts.map((a) => steps.run(task('stubborn', { ms: 60_000 }), a.signal));
    await sleep(300);
    for (const a of aborts) a.abort();
    for (const s of await Promise.allSettled(stubborn))
      expect(s).toMatchObject({ status: 'rejected', reason: expect.any(StepAbandonedError) });
    const outcome = await steps.run(task('noop'), never());
    expect(outcome.ok).toBe(true);
  }, 20_000);

  it('steps started after a CPU-bound step do not wait for it', async () => {
    const steps = open({ abortGraceMs: 200 });
    delta(await steps.run(task('noop'), never()));
    const order: string[] = [];
    const t0 = Date.now();
    const busy = steps
      .run(task('busy', { ms: 10_000 }, { timeLimitSeconds: 3 }), never())
      .finally(() => order.push('busy'));
    await sleep(20);
    const quick = Array.from({ length: 8 }, () =>
      steps.run(task('noop'), never()).finally(() => order.push('noop')),
    );
    for (const q of await Promise.all(quick)) expect(q.ok).toBe(true);
    const quickMs = Date.now() - t0;
    expect(await busy).toMatchObject({ ok: false, error: { name: 'StepTimeout' } });
    expect(order).toEqual([...Array<string>(8).fill('noop'), 'busy']);
    console.info(`8 noops beside a busy step: done ${quickMs} ms after it started`);
  }, 30_000);

  it('a step past its time limit fails with StepTimeout; one that stops at its signal keeps its thread', async () => {
    const steps = open({ abortGraceMs: 200 });
    const before = delta(await steps.run(task('noop'), never()));
    // Ignores its signal: its thread is terminated after the grace period.
    const t0 = Date.now();
    expect(
      await steps.run(task('stubborn', { ms: 30_000 }, { timeLimitSeconds: 1 }), never()),
    ).toEqual({
      ok: false,
      error: {
        outcome: 'failed',
        name: 'StepTimeout',
        message: 'the step ran past its time limit of 1 s',
      },
    });
    expect(Date.now() - t0).toBeLessThan(5_000);
    const replaced = delta(await steps.run(task('noop'), never()));
    expect(replaced.threadId).not.toBe(before.threadId);
    // Stops when its signal fires: it fails the same way, and its thread stays.
    expect(
      await steps.run(task('slow', { ms: 30_000 }, { timeLimitSeconds: 1 }), never()),
    ).toMatchObject({ ok: false, error: { name: 'StepTimeout' } });
    expect(delta(await steps.run(task('noop'), never())).threadId).toBe(replaced.threadId);
  }, 30_000);

  it('a step that exhausts its memory fails with StepCrashed; the steps that shared its thread complete', async () => {
    const steps = open({ maxHeapMb: 96, crashLimit: 2 });
    delta(await steps.run(task('noop'), never()));
    // Five steps waiting on their thread when the other step on it runs out of memory.
    const slow = Array.from({ length: 5 }, () => steps.run(task('slow', { ms: 500 }), never()));
    await sleep(100);
    const oom = steps.run(task('oom'), never());
    const outcome = await oom;
    expect(outcome).toMatchObject({
      ok: false,
      error: {
        outcome: 'failed',
        name: 'StepCrashed',
        message: expect.stringMatching(/crashed its thread 2 times.*ERR_WORKER_OUT_OF_MEMORY/),
      },
    });
    for (const s of await Promise.all(slow)) expect(s.ok).toBe(true);
    // And the pool goes on.
    expect((await steps.run(task('noop'), never())).ok).toBe(true);
  }, 60_000);

  it('a thread that kept memory past its limit is replaced after the step', async () => {
    const steps = open({ threadMemoryMb: 200 });
    const first = delta(await steps.run(task('noop'), never()));
    const hog = delta(await steps.run(task('hog', { mb: 300 }), never()));
    expect(hog.threadId).toBe(first.threadId);
    const next = delta(await steps.run(task('noop'), never()));
    expect(next.threadId).not.toBe(hog.threadId);
  }, 30_000);
});

describeBothModes('step isolation through the engine', (executor) => {
  const h = useHarness({
    executor,
    env: { WORKFLOWS_DIR: hostile, STEP_CRASH_LIMIT: '2', STEP_THREAD_MAX_HEAP_MB: '96' },
  });

  it("a CPU-bound step does not delay other processes' steps", async () => {
    // Its threads are up (they start with the API or the worker, each loading the workflows):
    // noops started together ran on two of them.
    for (let i = 0; ; i++) {
      const ids = await Promise.all([1, 2, 3, 4].map(() => h.http.start('noop')));
      const done = await Promise.all(ids.map((id) => h.http.waitForStatus(id, 'completed')));
      if (new Set(done.map((p) => p.currentState.threadId)).size > 1 || i === 50) break;
      await sleep(200);
    }
    const busy = await h.http.start('busy', { ms: 10_000 });
    await h.http.waitForStatus(busy, 'running');
    await sleep(100);
    const t0 = Date.now();
    const ids = await Promise.all(Array.from({ length: 8 }, () => h.http.start('noop')));
    const done = await Promise.all(ids.map((id) => h.http.waitForStatus(id, 'completed', 20_000)));
    const noopsMs = Date.now() - t0;
    const ranMs = Math.max(...done.map((p) => p.currentState.at as number)) - t0;
    // All done while the busy step still runs; it ends at its time limit of 4 s.
    expect((await h.http.get(`/api/processes/${busy}`)).body.status).toBe('running');
    const stopped = await h.http.waitForStatus(busy, 'failed', 20_000);
    expect(stopped.failedReason).toBe('the step ran past its time limit of 4 s');
    console.info(
      `${executor}: 8 noops beside a busy step: last step ran ${ranMs} ms, all seen completed ${noopsMs} ms after their starts began`,
    );
  }, 60_000);

  it('a step that exhausts its memory fails its process, the reason naming the crash', async () => {
    const id = await h.http.start('oom');
    const p = await h.http.waitForStatus(id, 'failed', 45_000);
    expect(p.failedReason).toMatch(/ERR_WORKER_OUT_OF_MEMORY/);
    expect(p.steps.at(-1)).toMatchObject({ status: 'failed', error: { name: 'StepCrashed' } });
  }, 60_000);

  it('a step past its time limit fails its process with StepTimeout', async () => {
    const id = await h.http.start('overtime');
    const p = await h.http.waitForStatus(id, 'failed', 20_000);
    expect(p.failedReason).toBe('the step ran past its time limit of 1 s');
    expect(p.steps.at(-1)).toMatchObject({ status: 'failed', error: { name: 'StepTimeout' } });
  }, 30_000);
});

// The step transition function, without a database: what each step kind's outcome commits.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { callbackStep, inputStep, retryStep, step, stepGroup } from '../src/engine/dsl.ts';
import { retryDelaySeconds, transition, type Position } from '../src/engine/transitions.ts';
import type { StepError } from '../src/engine/types.ts';

const now = new Date('2026-01-01T00:00:00.000Z');
const at = (p: Partial<Position> = {}): Position => ({
  index: 2,
  attempt: 1,
  isLast: false,
  state: { a: 1 },
  now,
  ...p,
});
const error = (outcome: StepError['outcome'] = 'failed'): StepError => ({
  outcome,
  name: 'Error',
  message: 'boom',
  stack: 'Error: boom\n    at step',
});
const plain = step('Plain', () => undefined);
const retry = retryStep('Retry', () => undefined, {
  maxAttempts: 3,
  backoffSeconds: 2,
  maxBackoffSeconds: 5,
});

describe('transition', () => {
  it('a success merges the delta and moves on, keeping the lease; the last step completes', () => {
    expect(transition(plain, { kind: 'success', delta: { b: 2 } }, at())).toEqual({
      group: undefined,
      stepStatus: 'success',
      state: { a: 1, b: 2 },
      processStatus: 'running',
      nextIndex: 3,
      nextAttempt: 1,
    });
    const last = transition(plain, { kind: 'success', delta: {} }, at({ isLast: true }));
    expect(last).toMatchObject({ processStatus: 'completed', nextIndex: 3 });
  });

  it('an empty delta keeps the very state object (its JSON is not built again)', () => {
    const state = { big: 'x'.repeat(10) };
    expect(transition(plain, { kind: 'success', delta: {} }, at({ state })).state).toBe(state);
    expect(transition(plain, { kind: 'skipped' }, at({ state }))).toMatchObject({
      stepStatus: 'skipped',
      state,
      nextIndex: 3,
    });
  });

  it('an input step suspends at its index', () => {
    const input = inputStep('Ask', z.object({ ok: z.boolean() }));
    expect(transition(input, { kind: 'suspend' }, at())).toMatchObject({
      stepStatus: 'suspend',
      processStatus: 'suspended',
      nextIndex: 2,
      nextAttempt: 1,
    });
  });

  it('an error of a plain step fails at its index with the next attempt', () => {
    expect(transition(plain, { kind: 'error', error: error() }, at({ attempt: 4 }))).toEqual({
      group: undefined,
      stepStatus: 'failed',
      state: { a: 1 },
      error: { name: 'Error', message: 'boom' },
      processStatus: 'failed',
      nextIndex: 2,
      nextAttempt: 5,
      failedReason: 'boom',
      traceback: 'Error: boom\n    at step',
    });
    expect(transition(plain, { kind: 'error', error: error('aborted') }, at())).toMatchObject({
      stepStatus: 'abort',
      processStatus: 'aborted',
    });
  });

  it('a retry step waits with exponential backoff, bounded, until its last attempt fails', () => {
    const first = transition(retry, { kind: 'error', error: error() }, at({ attempt: 1 }));
    expect(first).toMatchObject({
      stepStatus: 'waiting',
      processStatus: 'waiting',
      nextIndex: 2,
      nextAttempt: 2,
      retryAt: new Date(now.getTime() + 2_000),
      failedReason: 'boom',
    });
    expect(
      transition(retry, { kind: 'error', error: error() }, at({ attempt: 2 })).retryAt,
    ).toEqual(new Date(now.getTime() + 4_000));
    const last = transition(retry, { kind: 'error', error: error() }, at({ attempt: 3 }));
    expect(last).toMatchObject({ stepStatus: 'failed', processStatus: 'failed', nextAttempt: 4 });
    expect(last.retryAt).toBeUndefined();
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(retry, n, {}))).toEqual([2, 4, 5, 5]);
  });

  it('a retry step retries unreachable APIs but not aborts or inconsistent data', () => {
    const t = (o: StepError['outcome']) =>
      transition(retry, { kind: 'error', error: error(o) }, at()).processStatus;
    expect(t('api_unavailable')).toBe('waiting');
    expect(t('aborted')).toBe('aborted');
    expect(t('inconsistent_data')).toBe('inconsistent_data');
  });

  it('a retry delay may come from the state', () => {
    const fromState = retryStep('R', () => undefined, {
      maxAttempts: 2,
      backoffSeconds: (s: { wait: number }) => s.wait,
    });
    const t = transition(fromState, { kind: 'error', error: error() }, at({ state: { wait: 7 } }));
    expect(t.retryAt).toEqual(new Date(now.getTime() + 7_000));
  });

  it('a callback step awaits its callback with the action delta and a timeout from the state', () => {
    const cb = callbackStep('Job', {
      action: () => undefined,
      timeoutSeconds: (s: { t: number }) => s.t,
    });
    const tokenHash = Buffer.alloc(32, 1);
    const t = transition(
      cb,
      { kind: 'callback', delta: { url: 'u', t: 9 }, tokenHash },
      at({ state: { t: 1 } }),
    );
    expect(t).toMatchObject({
      stepStatus: 'awaiting_callback',
      processStatus: 'awaiting_callback',
      state: { t: 9, url: 'u' },
      nextIndex: 2,
      callback: { tokenHash, expiresAt: new Date(now.getTime() + 9_000) },
    });
    const forever = callbackStep('Forever', { action: () => undefined });
    expect(
      transition(forever, { kind: 'callback', delta: {}, tokenHash }, at()).callback?.expiresAt,
    ).toBeUndefined();
  });

  it('steps of a group carry its name into their commits', () => {
    const [a, b] = stepGroup(
      'Configure',
      step('A', () => undefined),
      stepGroup('Inner', plain),
    );
    expect(transition(a!, { kind: 'skipped' }, at()).group).toBe('Configure');
    expect(transition(b!, { kind: 'error', error: error() }, at()).group).toBe('Configure / Inner');
  });
});

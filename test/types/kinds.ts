// The other step kinds: what each adds to the state, and the state their functions see.
import { workflow, z, type ChildOutcome, type StateOf } from '../../src/index.ts';
import type { Equal, Expect } from './helpers.ts';

const start = workflow({
  name: 'typed_kinds',
  target: 'modify',
  input: z.object({ seconds: z.number(), failTimes: z.number().default(0) }),
});

// A callback step: its action's result, then the payload under resultKey.
export const callback = start
  .callbackStep('Job', {
    action: ({ callbackUrl }) => ({ url: callbackUrl }),
    timeoutSeconds: (state) => state.seconds + state.url.length,
    validate: z.object({ ok: z.boolean() }),
    resultKey: 'result',
  })
  .step('Finish', ({ state }) => ({ ok: state.result.ok, url: state.url }));

export type CallbackState = Expect<
  Equal<
    StateOf<typeof callback>,
    { seconds: number; failTimes: number; url: string; result: { ok: boolean }; ok: boolean }
  >
>;

export const callbackWrongKey = start
  .callbackStep('Job', { action: () => {}, resultKey: 'result' })
  // @ts-expect-error TS2339: the payload is under `result`, not the default `callbackResult`
  .step('Finish', ({ state }) => ({ got: state.callbackResult }));

export const callbackTooEarly = start
  // @ts-expect-error TS2339: the callback's result is there only after the callback step
  .step('Too early', ({ state }) => ({ got: state.callbackResult }))
  .callbackStep('Job', { action: () => {} });

export const callbackUnchecked = start
  .callbackStep('Job', { action: () => {} })
  // @ts-expect-error TS18046: a payload nothing validated is `unknown` until checked
  .step('Finish', ({ state }) => ({ ok: state.callbackResult.ok }));

export const callbackValidatedByFunction = start
  .callbackStep('Job', {
    action: () => {},
    validate: (payload) => (typeof payload === 'number' ? payload : 0),
  })
  .step('Finish', ({ state }) => ({ doubled: state.callbackResult * 2 }));

// retry, sleep: their functions of the state are typed too.
export const retried = start
  .retryStep(
    'Call',
    ({ state, attempt }) => {
      if (attempt <= state.failTimes) throw new Error('not yet');
      return { answered: attempt };
    },
    { maxAttempts: 3, backoffSeconds: (state) => state.seconds },
  )
  .sleep('Wait', (state) => state.seconds * 2)
  .step('Done', ({ state }) => ({ answered: state.answered + 1 }));

export const badBackoff = start.retryStep('Call', () => {}, {
  maxAttempts: 3,
  // @ts-expect-error TS2322: a backoff is a number of seconds
  backoffSeconds: () => 'soon',
});

// @ts-expect-error TS2339: sleep's function sees the state
export const sleepTypo = start.sleep('Wait', (state) => state.secs);

// conditional: what its steps add is optional afterwards; its predicate sees the state.
export const conditional = start
  .conditional(
    (state) => state.failTimes > 0,
    (b) => b.step('Only sometimes', () => ({ note: 'ran' })).step('Also', () => ({ also: 1 })),
  )
  .step('After', ({ state }) => ({ noted: state.note ?? 'skipped', also: state.also ?? 0 }));

export type ConditionalState = Expect<
  Equal<
    StateOf<typeof conditional>,
    { seconds: number; failTimes: number; note?: string; also: number; noted: string }
  >
>;

export const conditionalRequired = start
  .conditional(
    (state) => state.failTimes > 0,
    (b) => b.step('Only sometimes', () => ({ note: 'ran' })),
  )
  // @ts-expect-error TS18048: `note` is missing when the conditional's steps were skipped
  .step('After', ({ state }) => ({ length: state.note.length }));

export const conditionalPredicate = start.conditional(
  // @ts-expect-error TS2551: the predicate sees the state
  (state) => state.failTime > 0,
  (b) => b.step('Only sometimes', () => ({ note: 'ran' })),
);

// group: its steps run in order as any others; what they add stays required.
export const grouped = start
  .group('Configure', (b) =>
    b.step('One', () => ({ one: 1 })).step('Two', ({ state }) => ({ two: state.one + 1 })),
  )
  .step('After', ({ state }) => ({ sum: state.one + state.two }));

// subProcesses: the children's outcomes under resultKey.
export const fanOut = start
  .subProcesses('Children', (state) => [{ workflow: 'child', input: { n: state.seconds } }], {
    resultKey: 'kids',
  })
  .step('Report', ({ state }) => ({
    completed: state.kids.filter((k) => k.status === 'completed').map((k) => k.id),
  }));

export type FanOutKids = Expect<Equal<StateOf<typeof fanOut>['kids'], ChildOutcome[]>>;

export const fanOutDefaultKey = start
  .subProcesses('Children', () => [])
  // @ts-expect-error TS2339: without resultKey the outcomes are under `children`
  .step('Report', ({ state }) => ({ n: state.kids.length }));

// A time limit on the steps that run a body: a number of seconds, beside each kind's options.
export const limited = start
  .step('Quick', () => ({ quick: true }), { timeLimitSeconds: 5 })
  .retryStep('Call', () => ({ called: true }), {
    maxAttempts: 2,
    backoffSeconds: 1,
    timeLimitSeconds: 30,
  })
  .callbackStep('Job', { action: () => {}, timeoutSeconds: 600, timeLimitSeconds: 10 });

// @ts-expect-error TS2322: a time limit is a number of seconds
export const badLimit = start.step('Quick', () => {}, { timeLimitSeconds: '5 s' });

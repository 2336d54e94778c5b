// The public entry: no `any` in its types; the untyped `steps: [...]` form sees `unknown` values.
import {
  step,
  workflow,
  z,
  type CallbackContext,
  type FormPage,
  type FromState,
  type RunPredicate,
  type State,
  type StepContext,
  type StepFn,
  type TestEngine,
  type WorkflowDefinition,
} from '../../src/index.ts';
import type { Equal, Expect, IsAny } from './helpers.ts';

type Values<T> = T[keyof T];
export type NoAny = [
  Expect<Equal<IsAny<Values<StepContext>>, false>>,
  Expect<Equal<IsAny<Values<CallbackContext>>, false>>,
  Expect<Equal<IsAny<Parameters<StepFn>[0]['state']>, false>>,
  Expect<Equal<IsAny<Parameters<Exclude<FromState<number>, number>>[0]>, false>>,
  Expect<Equal<IsAny<Parameters<Exclude<FormPage, z.ZodObject>>[0]>, false>>,
  Expect<Equal<IsAny<Parameters<RunPredicate>[0]['input']>, false>>,
  Expect<Equal<IsAny<Values<State>>, false>>,
  Expect<Equal<IsAny<Awaited<ReturnType<TestEngine['run']>>>, false>>,
];

// The untyped form still works, with the state's values unknown (never `any`).
export const untyped: WorkflowDefinition = workflow({
  name: 'untyped',
  target: 'modify',
  input: z.object({ n: z.number() }),
  steps: [
    step('Read', ({ state }) => {
      // @ts-expect-error TS18046: an untyped step's state values are unknown
      const doubled = state.n * 2;
      return { doubled };
    }),
  ],
});

// A typed workflow is a definition the registry loads.
export const typed: WorkflowDefinition = workflow({ name: 'typed', target: 'modify' }).step(
  'One',
  () => {},
);

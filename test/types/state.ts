// A step's state is the start form merged with what the steps before it return.
import { workflow, z, type StateOf } from '../../src/index.ts';
import type { Equal, Expect } from './helpers.ts';

const start = workflow({
  name: 'typed_state',
  target: 'create',
  input: z.object({ name: z.string(), count: z.number().default(1) }),
});

export const greets = start
  .step('Greet', ({ state }) => ({ greeting: `Hello, ${state.name}!`, total: state.count + 1 }))
  .step('Check', ({ state }) => {
    const g: string = state.greeting;
    const t: number = state.total;
    return { checked: g.length + t };
  });

export type GreetsState = Expect<
  Equal<
    StateOf<typeof greets>,
    { name: string; count: number; greeting: string; total: number; checked: number }
  >
>;

export const typo = start.step('Typo', ({ state }) => ({
  // @ts-expect-error TS2339: a typo'd key ("nmae") is not in the state
  greeting: `Hello, ${state.nmae}!`,
}));

export const wrongType = start.step('Wrong type', ({ state }) => {
  // @ts-expect-error TS2322: `name` is a string, not a number
  const n: number = state.name;
  return { n };
});

export const later = start
  // @ts-expect-error TS2339: `greeting` is only provided by the step after this one
  .step('Too early', ({ state }) => ({ shout: state.greeting }))
  .step('Greet', ({ state }) => ({ greeting: `Hello, ${state.name}!` }));

// A step's result overrides the keys it returns, with its type.
export const overridden = start
  .step('Stringify', ({ state }) => ({ count: String(state.count) }))
  // @ts-expect-error TS2362: `count` is a string after "Stringify"
  .step('Add', ({ state }) => ({ sum: state.count * 2 }));

// A step that may return nothing adds its keys as optional; async steps add what they resolve to.
export const maybe = start
  .step('Sometimes', ({ state }) => {
    if (state.count > 1) return { many: true };
  })
  .step('Later', async () => ({ at: Date.now() }))
  .step('Use', ({ state }) => {
    const at: number = state.at;
    // @ts-expect-error TS2322: `many` may be missing (the step may have returned nothing)
    const many: boolean = state.many;
    return { used: at > 0 && many };
  });

// @ts-expect-error TS2322: a step returns a partial state (an object) or nothing
export const notAnObject = start.step('Number', () => 42);

export const context = start.step('Context', ({ processId, attempt, signal }) => {
  const id: string = processId;
  const n: number = attempt;
  signal.throwIfAborted();
  return { id, n };
});

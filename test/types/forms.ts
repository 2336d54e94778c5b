// Input steps and the start form add their fields with their zod types.
import { workflow, z, type StateOf } from '../../src/index.ts';
import type { Equal, Expect } from './helpers.ts';

const start = workflow({
  name: 'typed_forms',
  target: 'create',
  input: z.object({ device: z.enum(['leaf-1', 'leaf-2']) }),
});

export const confirmed = start
  .inputStep('Confirm', z.object({ confirmed: z.boolean(), note: z.string().optional() }))
  .step('Finish', ({ state }) => ({ finished: state.confirmed, note: state.note ?? '' }));

export type ConfirmedState = Expect<
  Equal<
    StateOf<typeof confirmed>,
    { device: 'leaf-1' | 'leaf-2'; confirmed: boolean; note: string; finished: boolean }
  >
>;

export const beforeInput = start
  // @ts-expect-error TS2339: `confirmed` comes from the input step after this one
  .step('Too early', ({ state }) => ({ early: state.confirmed }))
  .inputStep('Confirm', z.object({ confirmed: z.boolean() }));

export const wrongField = start
  .inputStep('Confirm', z.object({ confirmed: z.boolean() }))
  // @ts-expect-error TS2339: `confirmed` is a boolean
  .step('Finish', ({ state }) => ({ text: state.confirmed.toUpperCase() }));

// A form built from the state sees the state; its fields join it.
export const fromState = start
  .inputStep('Port', (state) => z.object({ port: z.string().default(`${state.device}:1`) }))
  .step('Use', ({ state }) => ({ where: `${state.device} ${state.port}` }));

export const fromStateTypo = start.inputStep('Port', (state) =>
  // @ts-expect-error TS2551: a form function reads the state like a step
  z.object({ port: z.string().default(state.devcie) }),
);

// Pages: each page's function sees the pages before it.
export const pages = start
  .inputStep('Where', [
    z.object({ rack: z.number() }),
    (state) => z.object({ slot: z.number().max(state.rack * 10) }),
  ])
  .step('Use', ({ state }) => ({ at: state.rack + state.slot }));

export const pagesTooEarly = start.inputStep('Where', [
  // @ts-expect-error TS2339: the first page cannot see what the second asks
  (state) => z.object({ rack: z.number().max(state.slot) }),
  z.object({ slot: z.number() }),
]);

// The start form: pages, and the hooks that see the start input.
export const multiPageStart = workflow({
  name: 'typed_start',
  target: 'create',
  input: [
    z.object({ site: z.string() }),
    (state) => z.object({ rack: z.string().default(`${state.site}-r1`) }),
  ],
  lockKeys: (input) => [`site:${input.site}`, `rack:${input.rack}`],
  runPredicate: ({ input }) => input.site.length > 0 || 'no site',
}).step('Use', ({ state }) => ({ where: `${state.site}/${state.rack}` }));

export const lockKeyTypo = workflow({
  name: 'typed_lock',
  target: 'create',
  input: z.object({ site: z.string() }),
  // @ts-expect-error TS2339: lockKeys sees the start form's fields
  lockKeys: (input) => [`site:${input.stie}`],
}).step('Noop', () => {});

// No start form: the state starts empty.
export const empty = workflow({ name: 'typed_empty', target: 'modify' })
  // @ts-expect-error TS2339: nothing is in the state before the first step
  .step('Read', ({ state }) => ({ x: state.anything }));

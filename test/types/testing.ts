// The test kit: `run` and `start` take a typed workflow's start form input and `run` returns its
// state typed; processes are the REST API's JSON (dates as ISO strings).
import { workflow, z, type StateOf } from '../../src/index.ts';
import type { TestEngine, TestProcess } from '../../src/testing.ts';
import type { Equal, Expect } from './helpers.ts';

declare const t: TestEngine;

const order = workflow({
  name: 'kit_order',
  target: 'create',
  input: z.object({ item: z.string(), quantity: z.number().int().default(1) }),
})
  .inputStep('Payment', z.object({ paid: z.boolean() }))
  .step('Ship', ({ state }) => ({ shipped: state.paid }));

type OrderState = StateOf<typeof order>;

export const run = () => t.run(order, { item: 'bolt', quantity: 2 });
export type RunResult = Expect<Equal<Awaited<ReturnType<typeof run>>, TestProcess<OrderState>>>;
// Once completed, the state is the workflow's whole state.
export type Completed = Expect<
  Equal<Extract<TestProcess<OrderState>, { status: 'completed' }>['currentState'], OrderState>
>;

export function shipped(p: TestProcess<OrderState>): boolean {
  if (p.status === 'completed') return p.currentState.shipped;
  // Before that, the keys of the steps still to run may be missing.
  // @ts-expect-error TS2322: a process not completed may not have shipped yet
  const notYet: boolean = p.currentState.shipped;
  return notYet;
}

export async function typedInput() {
  // A field with a default may be left out.
  await t.run(order, { item: 'bolt' });
  await t.run(order, { item: 'bolt' }, { user: 'ada' });
  await t.start(order, { item: 'bolt' });
  // @ts-expect-error TS2322: quantity is a number
  await t.run(order, { item: 'bolt', quantity: '2' });
  // @ts-expect-error TS2554: the start form asks for an item
  await t.run(order);
  // @ts-expect-error TS2353: the start form has no such field
  await t.start(order, { item: 'bolt', colour: 'red' });
}

// By name, the input is not checked and the state is not typed.
export const byName = () => t.run('kit_order', { anything: true });
export type ByName = Expect<Equal<Awaited<ReturnType<typeof byName>>, TestProcess>>;

const noInput = workflow({ name: 'kit_no_input', target: 'modify' }).step('One', () => ({
  n: 1,
}));

const twoPages = workflow({
  name: 'kit_two_pages',
  target: 'create',
  input: [
    z.object({ site: z.string() }),
    (state) => z.object({ rack: z.string().default(`${state.site}-r1`) }),
  ],
}).step('Use', ({ state }) => ({ where: `${state.site}/${state.rack}` }));

export async function otherForms() {
  await t.run(noInput);
  await t.run(noInput, {});
  await t.run(twoPages, [{ site: 'ams' }, {}]);
  // @ts-expect-error TS2353: a form of two pages takes a list of both (not an object)
  await t.run(twoPages, { site: 'ams' });
}

// Processes are the API's JSON: dates are ISO 8601 strings.
export type Dates = [
  Expect<Equal<TestProcess['startedAt'], string>>,
  Expect<Equal<TestProcess['retryAt'], string | null>>,
  Expect<Equal<TestProcess['steps'][number]['completedAt'], string>>,
  Expect<Equal<Awaited<ReturnType<TestEngine['skip']>>, TestProcess>>,
];

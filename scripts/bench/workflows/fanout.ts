import { workflow, z } from '../../../src/index.ts';

/**
 * The fan-out bench item (scripts/bench/fanout.ts): one task whose subProcesses step starts
 * `count` three-step `noop` children, the shape of a nightly validation.
 */
export default workflow({
  name: 'fanout',
  target: 'system',
  isTask: true,
  description: 'Starts `count` noop children and waits for all of them',
  input: z.object({ count: z.number().int().min(0) }),
})
  .subProcesses('Start children', (state) =>
    Array.from({ length: state.count }, () => ({ workflow: 'noop' })),
  )
  .step('Count', ({ state }) => ({ counted: state.children.length }));

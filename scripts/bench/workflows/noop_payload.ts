import { workflow, z } from '../../../src/index.ts';

/** Three steps that do nothing with a state of a chosen size: how cost grows with state size. */
export default workflow({
  name: 'noop_payload',
  target: 'modify',
  description: 'Three steps that do nothing, carrying a payload in the state',
  input: z.object({ payload: z.string() }),
})
  .step('One', () => {})
  .step('Two', () => {})
  .step('Three', () => {});

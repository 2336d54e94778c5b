import { workflow } from '../src/index.ts';

export default workflow({
  name: 'noop',
  target: 'modify',
  description: 'Three steps that do nothing',
})
  .step('One', () => {})
  .step('Two', () => {})
  .step('Three', () => {});

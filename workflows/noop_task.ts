import { workflow } from '../src/index.ts';

export default workflow({
  name: 'noop_task',
  target: 'system',
  isTask: true,
  description: 'Three steps that do nothing, as a task',
})
  .step('One', () => {})
  .step('Two', () => {})
  .step('Three', () => {});

import { workflow, z } from '../src/index.ts';

export default workflow({
  name: 'hello',
  target: 'create',
  description: 'Greets someone after confirmation',
  input: z.object({ name: z.string().min(1) }),
})
  .step('Greet', ({ state }) => ({ greeting: `Hello, ${state.name}!` }))
  .inputStep('Confirm', z.object({ confirmed: z.boolean() }))
  .step('Finish', ({ state }) => ({ finished: state.confirmed }));

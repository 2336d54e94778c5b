import { workflow, z } from '../src/index.ts';

export default workflow({
  name: 'sleep_demo',
  target: 'modify',
  description: 'Waits durably between two steps (no lease or worker slot held meanwhile)',
  input: z.object({ seconds: z.number().min(0).default(60) }),
})
  .step('Note the time', () => ({ sleptAt: Date.now() }))
  .sleep('Wait', (state) => state.seconds)
  .step('Wake up', ({ state }) => ({ wokeAt: Date.now(), sleptMs: Date.now() - state.sleptAt }));

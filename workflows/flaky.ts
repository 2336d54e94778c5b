import { workflow, z } from '../src/index.ts';

export default workflow({
  name: 'flaky',
  target: 'modify',
  description: 'Fails its step failTimes times; each resume retries it',
  input: z.object({ failTimes: z.number().int().min(0) }),
}).step('Flaky', ({ state, attempt }) => {
  if (attempt <= state.failTimes) {
    throw new Error(`attempt ${attempt} of ${state.failTimes + 1} fails on purpose`);
  }
  return { succeededOnAttempt: attempt };
});

import { step, workflow, z } from '../src/index.ts';

export default workflow({
  name: 'flaky',
  target: 'modify',
  description: 'Fails its step failTimes times; each resume retries it',
  input: z.object({ failTimes: z.number().int().min(0) }),
  steps: [
    step('Flaky', ({ state, attempt }) => {
      if (attempt <= (state.failTimes as number)) {
        throw new Error(
          `attempt ${attempt} of ${(state.failTimes as number) + 1} fails on purpose`,
        );
      }
      return { succeededOnAttempt: attempt };
    }),
  ],
});

import { setTimeout as sleep } from 'node:timers/promises';
import { workflow, z } from '../../../src/index.ts';

/**
 * A step past its time limit of 1 s that ignores its signal: waiting `sleepMs` (2–10 s), it ends
 * within the abort grace (5 s after its limit) or has its thread taken away. Its process fails
 * with StepTimeout either way, and the steps that shared its thread must not notice.
 */
export default workflow({
  name: 'overtime',
  target: 'modify',
  input: z.object({ sleepMs: z.number().int().min(0) }),
})
  .step('Before', () => ({ before: true }))
  .step(
    'Past its limit',
    async ({ state }) => {
      await sleep(state.sleepMs);
      return { finished: true };
    },
    { timeLimitSeconds: 1 },
  );

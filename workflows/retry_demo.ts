import { workflow, z } from '../src/index.ts';

export default workflow({
  name: 'retry_demo',
  target: 'modify',
  description: 'Calls a device that fails failTimes times; retried on its own with backoff',
  input: z.object({
    failTimes: z.number().int().min(0),
    backoffSeconds: z.number().positive().default(1),
  }),
}).retryStep(
  'Call device',
  ({ state, attempt }) => {
    if (attempt <= state.failTimes)
      throw new Error(`the device did not answer (attempt ${attempt})`);
    return { answeredOnAttempt: attempt };
  },
  { maxAttempts: 5, backoffSeconds: (state) => state.backoffSeconds, maxBackoffSeconds: 60 },
);

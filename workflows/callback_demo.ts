import { workflow, z } from '../src/index.ts';

export default workflow({
  name: 'callback_demo',
  target: 'modify',
  description: 'Hands a job its callback URL and waits until the job posts its result there',
  input: z.object({ timeoutSeconds: z.number().int().positive().default(300) }),
})
  .callbackStep('Run job', {
    // A real action would start the job (Ansible, NSO, a controller) and give it the URL.
    action: ({ callbackUrl }) => ({ callbackUrl }),
    timeoutSeconds: (state) => state.timeoutSeconds,
    resultKey: 'result',
  })
  .step('Finish', () => ({ finished: true }));

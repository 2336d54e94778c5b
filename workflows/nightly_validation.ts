import { workflow, z } from '../src/index.ts';
import { devices } from './_inventory.ts';

/** What a validate_device child leaves in its state. */
const validation = z.object({
  device: z.string().optional(),
  valid: z.boolean().optional(),
  problems: z.array(z.string()).optional(),
});

export default workflow({
  name: 'nightly_validation',
  target: 'system',
  description:
    'Validates every device of the inventory, one child process each, and reports failures',
  input: z.object({ delayMs: z.number().int().min(0).default(0) }),
})
  .subProcesses(
    'Validate devices',
    (state) =>
      devices().map((device) => ({
        workflow: 'validate_device',
        input: { device, delayMs: state.delayMs },
      })),
    { resultKey: 'validations' },
  )
  .step('Report', ({ state }) => {
    const failures = state.validations
      .map((c) => ({ process: c.id, ...validation.parse(c.state) }))
      .filter((c) => !c.valid)
      .map((c) => ({ device: c.device, problems: c.problems, process: c.process }));
    return { checked: state.validations.length, failures };
  });

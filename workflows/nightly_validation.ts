import { step, subProcesses, workflow, z } from '../src/index.ts';
import { devices } from './_inventory.ts';

interface Child {
  id: string;
  status: string;
  state: { device?: string; valid?: boolean; problems?: string[] };
}

export default workflow({
  name: 'nightly_validation',
  target: 'system',
  description:
    'Validates every device of the inventory, one child process each, and reports failures',
  input: z.object({ delayMs: z.number().int().min(0).default(0) }),
  steps: [
    subProcesses(
      'Validate devices',
      (state: { delayMs: number }) =>
        devices().map((device) => ({
          workflow: 'validate_device',
          input: { device, delayMs: state.delayMs },
        })),
      { resultKey: 'validations' },
    ),
    step('Report', ({ state }) => {
      const children = state.validations as Child[];
      const failures = children
        .filter((c) => !c.state.valid)
        .map((c) => ({ device: c.state.device, problems: c.state.problems, process: c.id }));
      return { checked: children.length, failures };
    }),
  ],
});

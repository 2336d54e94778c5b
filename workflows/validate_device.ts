import { setTimeout as sleep } from 'node:timers/promises';
import { workflow, z } from '../src/index.ts';
import { INVENTORY } from './_inventory.ts';

/** The checks a device passes or fails (a real one would ask the device). */
function problemsOf(device: string): string[] {
  const ports = INVENTORY[device] ?? [];
  const problems: string[] = [];
  if (ports.length < 3) problems.push(`only ${ports.length} ports`);
  return problems;
}

export default workflow({
  name: 'validate_device',
  target: 'validate',
  description: 'Checks one device of the inventory (a child of nightly_validation)',
  input: z.object({ device: z.string().min(1), delayMs: z.number().int().min(0).default(0) }),
}).step('Check device', async ({ state, signal }) => {
  if (state.delayMs > 0) await sleep(state.delayMs, undefined, { signal });
  const problems = problemsOf(state.device);
  return { valid: problems.length === 0, problems };
});

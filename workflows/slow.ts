import { setTimeout as sleep } from 'node:timers/promises';
import { workflow, z, type StepContext } from '../src/index.ts';

/** Waits `ms`, ending early (without error) when the process is aborted. */
async function wait(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

/** Step n: waits, then adds n to the steps visited. */
const visit =
  (n: number) =>
  async ({ state, signal }: StepContext<{ sleepMs: number; visited?: number[] }>) => {
    await wait(state.sleepMs, signal);
    return { visited: [...(state.visited ?? []), n] };
  };

export default workflow({
  name: 'slow',
  target: 'modify',
  description: 'Five steps that each wait sleepMs milliseconds',
  input: z.object({ sleepMs: z.number().int().min(0).max(600_000).default(500) }),
})
  .step('Step 1', visit(1))
  .step('Step 2', visit(2))
  .step('Step 3', visit(3))
  .step('Step 4', visit(4))
  .step('Step 5', visit(5));

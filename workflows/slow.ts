import { setTimeout as sleep } from 'node:timers/promises';
import { step, workflow, z } from '../src/index.ts';

/** Waits `ms`, ending early (without error) when the process is aborted. */
async function wait(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

const visit = (n: number) =>
  step(`Step ${n}`, async ({ state, signal }) => {
    await wait(state.sleepMs as number, signal);
    return { visited: [...((state.visited as number[] | undefined) ?? []), n] };
  });

export default workflow({
  name: 'slow',
  target: 'modify',
  description: 'Five steps that each wait sleepMs milliseconds',
  input: z.object({ sleepMs: z.number().int().min(0).max(600_000).default(500) }),
  steps: [1, 2, 3, 4, 5].map(visit),
});

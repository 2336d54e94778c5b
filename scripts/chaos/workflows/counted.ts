import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { step, workflow } from '../../../src/engine/dsl.ts';

/**
 * Three short steps that append `<processId> <step>` to CHAOS_EXEC_LOG each time they run, so the
 * suite can count executions against commits (re-executions after crashes).
 */
const counted = (n: number) =>
  step(`Counted ${n}`, async ({ processId, signal }) => {
    const log = process.env.CHAOS_EXEC_LOG;
    if (log) fs.appendFileSync(log, `${processId} ${n}\n`);
    await sleep(20 + Math.floor(Math.random() * 60), undefined, { signal }).catch(() => undefined);
    return { [`counted${n}`]: true };
  });

export default workflow({
  name: 'counted',
  target: 'modify',
  description: 'Three short steps whose executions are logged (fault-injection suite)',
  steps: [1, 2, 3].map(counted),
});

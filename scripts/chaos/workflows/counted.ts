import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { workflow, type StepContext } from '../../../src/index.ts';

/**
 * Three short steps that append `<processId> <step>` to CHAOS_EXEC_LOG each time they run, so the
 * suite can count executions against commits (re-executions after crashes).
 */
const counted =
  (n: number) =>
  async ({ processId, signal }: StepContext) => {
    const log = process.env.CHAOS_EXEC_LOG;
    if (log) fs.appendFileSync(log, `${processId} ${n}\n`);
    await sleep(20 + Math.floor(Math.random() * 60), undefined, { signal }).catch(() => undefined);
    return { [`counted${n}`]: true };
  };

export default workflow({
  name: 'counted',
  target: 'modify',
  description: 'Three short steps whose executions are logged (fault-injection suite)',
})
  .step('Counted 1', counted(1))
  .step('Counted 2', counted(2))
  .step('Counted 3', counted(3));

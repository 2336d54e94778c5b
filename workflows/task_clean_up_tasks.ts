// Built-in task, scheduled by default: deletes old completed tasks, a bounded batch at a time.
import { loadConfig } from '../src/config/index.ts';
import { deleteCompletedTasks } from '../src/db/step-writes.ts';
import { noUncompletedInstance, step, workflow } from '../src/index.ts';
import { systemDatabase } from '../src/engine/system.ts';

const BATCH = 1_000;

export default workflow({
  name: 'task_clean_up_tasks',
  target: 'system',
  description: 'Deletes completed tasks older than TASK_LOG_RETENTION_DAYS, with their steps',
  runPredicate: noUncompletedInstance,
  steps: [
    step('Delete old completed tasks', async ({ signal }) => {
      const days = loadConfig().TASK_LOG_RETENTION_DAYS;
      let deleted = 0;
      // Each batch is its own short statement: no lock is held for long, and an abort stops it
      // between batches.
      for (;;) {
        signal.throwIfAborted();
        const n = await deleteCompletedTasks(systemDatabase(), days, BATCH);
        deleted += n;
        if (n < BATCH) break;
      }
      return { retentionDays: days, deleted };
    }),
  ],
});

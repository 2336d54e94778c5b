// Built-in task, scheduled by default: deletes old completed tasks, a bounded batch at a time.
import { internal, noUncompletedInstance, workflow } from '../src/index.ts';

const BATCH = 1_000;

export default workflow({
  name: 'task_clean_up_tasks',
  target: 'system',
  description: 'Deletes completed tasks older than TASK_LOG_RETENTION_DAYS, with their steps',
  runPredicate: noUncompletedInstance,
}).step('Delete old completed tasks', async ({ signal }) => {
  const days = internal.loadConfig().TASK_LOG_RETENTION_DAYS;
  let deleted = 0;
  // Each batch is its own short statement: no lock is held for long, and an abort stops it
  // between batches.
  for (;;) {
    signal.throwIfAborted();
    const n = await internal.deleteCompletedTasks(internal.systemDatabase(), days, BATCH);
    deleted += n;
    if (n < BATCH) break;
  }
  return { retentionDays: days, deleted };
});

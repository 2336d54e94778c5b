// Built-in task, scheduled by default: a safety net for what the engine normally does itself.
import { internal, noUncompletedInstance, workflow } from '../src/index.ts';

export default workflow({
  name: 'task_resume_workflows',
  target: 'system',
  description:
    'Resumes waiting processes whose retry is overdue and processes left by a dead runner (a safety net)',
  runPredicate: noUncompletedInstance,
})
  .step('Resume overdue retries', async () => ({
    overdueRetries: (await internal.resumeOverdueRetries(internal.systemDatabase(), 60)).length,
  }))
  .step('Release abandoned leases', async () => ({
    abandonedLeases: (await internal.releaseAbandonedLeases(internal.systemDatabase(), 300)).length,
  }));

// Built-in task, scheduled by default: a safety net for what the engine normally does itself.
import { releaseAbandonedLeases, resumeOverdueRetries } from '../src/db/step-writes.ts';
import { noUncompletedInstance, step, workflow } from '../src/index.ts';
import { systemDatabase } from '../src/engine/system.ts';

export default workflow({
  name: 'task_resume_workflows',
  target: 'system',
  description:
    'Resumes waiting processes whose retry is overdue and processes left by a dead runner (a safety net)',
  runPredicate: noUncompletedInstance,
  steps: [
    step('Resume overdue retries', async () => ({
      overdueRetries: (await resumeOverdueRetries(systemDatabase(), 60)).length,
    })),
    step('Release abandoned leases', async () => ({
      abandonedLeases: (await releaseAbandonedLeases(systemDatabase(), 300)).length,
    })),
  ],
});

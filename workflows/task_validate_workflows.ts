// Built-in task, scheduled by default: finds processes that no longer match their workflow.
import { InconsistentData, internal, workflow } from '../src/index.ts';

export default workflow({
  name: 'task_validate_workflows',
  target: 'system',
  description:
    'Checks that every process not yet ended still matches its workflow (the step names at its position)',
})
  .step('Check processes', async ({ signal }) => {
    const found = await internal.findChangedProcesses(
      internal.systemDatabase(),
      internal.systemRegistry(),
      { reported: 100, signal },
    );
    return { checked: found.checked, invalidCount: found.changedCount, invalid: found.changed };
  })
  .step('Report', ({ state }) => {
    const n = state.invalidCount;
    if (n > 0)
      throw new InconsistentData(
        `${n} process(es) would fail on resume: their workflow changed (see the state's "invalid")`,
      );
    return {};
  });

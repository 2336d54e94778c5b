// Built-in task, scheduled by default: finds processes that no longer match their workflow.
import { InconsistentData, internal, workflow } from '../src/index.ts';

const PAGE = 1_000;
const REPORTED = 100;

interface Invalid {
  id: string;
  workflow: string;
  status: string;
  reason: string;
}

export default workflow({
  name: 'task_validate_workflows',
  target: 'system',
  description:
    'Checks that every process not yet ended still matches its workflow (the step names at its position)',
})
  .step('Check processes', async ({ signal }) => {
    const registry = internal.systemRegistry();
    const invalid: Invalid[] = [];
    let checked = 0;
    let invalidCount = 0;
    for (let after: string | null = null; ;) {
      signal.throwIfAborted();
      const page = await internal.unendedPositions(internal.systemDatabase(), after, PAGE);
      for (const p of page) {
        checked++;
        const def = registry.get(p.workflowName);
        const reason = def
          ? internal.positionProblem(def, p)
          : `workflow ${p.workflowName} is not registered`;
        if (!reason) continue;
        invalidCount++;
        if (invalid.length < REPORTED)
          invalid.push({ id: p.id, workflow: p.workflowName, status: p.status, reason });
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.id;
    }
    return { checked, invalidCount, invalid };
  })
  .step('Report', ({ state }) => {
    const n = state.invalidCount;
    if (n > 0)
      throw new InconsistentData(
        `${n} process(es) would fail on resume: their workflow changed (see the state's "invalid")`,
      );
    return {};
  });

// Start predicates shipped with the engine, for `workflow({ runPredicate })`.
import { unendedOfWorkflow } from '../db/processes.ts';
import type { RunPredicate } from './dsl.ts';

/** Refuses a start while another process of the same workflow has not ended (completed or aborted). */
export const noUncompletedInstance: RunPredicate = async ({ workflow, db }) => {
  const other = await unendedOfWorkflow(db, workflow);
  return other ? `process ${other.id} of ${workflow} is ${other.status}` : true;
};

// Start predicates shipped with the engine, for `workflow({ runPredicate })`.
import { TERMINAL_STATUSES } from '../db/model.ts';
import type { RunPredicate } from './dsl.ts';

/** Refuses a start while another process of the same workflow has not ended (completed or aborted). */
export const noUncompletedInstance: RunPredicate = async ({ workflow, db }) => {
  const { rows } = await db.query(
    `SELECT id, status FROM orchestrator.processes
      WHERE workflow_name = $1 AND status <> ALL($2::text[]) LIMIT 1`,
    [workflow, TERMINAL_STATUSES],
  );
  const other = rows[0];
  return other ? `process ${String(other.id)} of ${workflow} is ${String(other.status)}` : true;
};

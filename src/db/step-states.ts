// One step's state, read when the page opens it: the process view without states
// (GET /api/processes/:id?states=false) lists the steps alone, so a live event that refetches the
// process does not carry megabytes of state each time.
import type { State } from './model.ts';
import type { Queryable } from './pool.ts';
import type { StepRow } from './processes.ts';

/** The steps of a process without their states (`stateSize`: the stored state's bytes). */
export async function getStepSummaries(
  db: Queryable,
  processId: string,
): Promise<(Omit<StepRow, 'state'> & { stateSize: number })[]> {
  const { rows } = await db.query<Omit<StepRow, 'state'> & { stateSize: number }>(
    `SELECT id, step_index AS "stepIndex", name, status, error, started_at AS "startedAt",
            completed_at AS "completedAt", retries, created_by AS "createdBy",
            step_group AS "group", pg_column_size(state) AS "stateSize"
       FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
    [processId],
  );
  return rows;
}

/**
 * A step row's state and the state before it (the previous step row's, `{}` for the first), or
 * undefined when the process has no step row with this id.
 */
export async function getStepState(
  db: Queryable,
  processId: string,
  stepId: number,
): Promise<{ state: State; previous: State } | undefined> {
  const { rows } = await db.query<{ state: State; previous: State }>(
    `SELECT s.state,
            coalesce((SELECT x.state FROM orchestrator.process_steps x
                       WHERE x.process_id = s.process_id AND x.id < s.id
                       ORDER BY x.id DESC LIMIT 1), '{}'::jsonb) AS previous
       FROM orchestrator.process_steps s WHERE s.process_id = $1 AND s.id = $2`,
    [processId, stepId],
  );
  return rows[0];
}

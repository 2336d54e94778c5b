// Child processes: inserted with their parent's step commit, and read for the parent.
import type { ProcessEventRow } from './events.ts';
import { CURRENT_STATE } from './fragments.ts';
import { insertProcesses } from './leases.ts';
import type { ProcessStatus, State } from './model.ts';
import type { Queryable } from './pool.ts';

/** A child to insert with its parent's step commit. */
export interface NewChild {
  id: string;
  workflowName: string;
  workflowVersion?: string | undefined;
  target: string;
  isTask: boolean;
  createdBy: string | null;
  input: State;
}

/**
 * Inside the transaction of the parent's waiting commit: inserts its children (`created`, with
 * their initial inputs), each linked to the parent's step. Returns their events.
 */
export async function insertChildren(
  tx: Queryable,
  parentId: string,
  parentStep: number,
  children: readonly NewChild[],
): Promise<ProcessEventRow[]> {
  const inserted = await insertProcesses(tx, children);
  if (inserted.some((i) => i === undefined)) throw new Error('children could not be inserted');
  await tx.query(
    `UPDATE orchestrator.processes SET parent_id = $1, parent_step = $2 WHERE id = ANY($3::uuid[])`,
    [parentId, parentStep, children.map((c) => c.id)],
  );
  return inserted.map((i) => i!.event);
}

/**
 * Whether a parent was made runnable by its children's end (child_ended, sql/015): one read, no
 * lock, so that a worker asks for a parent's job only once the last child ended.
 */
export async function parentResumed(db: Queryable, parentId: string): Promise<boolean> {
  const { rows } = await db.query<{ resumed: boolean }>({
    name: 'orchestrator-parent-resumed',
    text: `SELECT status = 'resumed' AS resumed FROM orchestrator.processes WHERE id = $1`,
    values: [parentId],
  });
  return rows[0]?.resumed ?? false;
}

/** Every child a process started, by step: id, workflow, status (for showing the parent). */
export async function childSummaries(
  db: Queryable,
  parentId: string,
): Promise<{ id: string; workflow: string; status: ProcessStatus; parentStep: number }[]> {
  const { rows } = await db.query(
    `SELECT id, workflow_name AS workflow, status, parent_step AS "parentStep"
       FROM orchestrator.processes WHERE parent_id = $1 ORDER BY parent_step, started_at, id`,
    [parentId],
  );
  return rows;
}

/**
 * The children a process started at a step, the last time it ran the step (a retry of the step
 * starts them anew; they share the start's transaction time): where each stands and its state.
 */
export async function childrenOf(
  db: Queryable,
  parentId: string,
  parentStep: number,
): Promise<{ id: string; workflow: string; status: ProcessStatus; state: State }[]> {
  const { rows } = await db.query(
    `SELECT p.id, p.workflow_name AS workflow, p.status, ${CURRENT_STATE} AS state
       FROM orchestrator.processes p
      WHERE p.parent_id = $1 AND p.parent_step = $2
        AND p.started_at = (SELECT max(c.started_at) FROM orchestrator.processes c
                             WHERE c.parent_id = $1 AND c.parent_step = $2)
      ORDER BY p.started_at, p.id`,
    [parentId, parentStep],
  );
  return rows;
}

// Reads of orchestrator.processes and its step rows; the writes are in the statement modules beside it (leases, step-commits, resumes, …).
import { TERMINAL_STATUSES, type ProcessStatus, type State, type StepStatus } from './model.ts';
import type { Queryable, SqlRunner } from './pool.ts';
import { CURRENT_STATE, retryDue } from './fragments.ts';

export const PROCESS_COLUMNS = `p.id, p.workflow_name AS "workflowName", p.status, p.last_step AS "lastStep",
  p.step_index AS "stepIndex", p.attempt, p.is_task AS "isTask", p.target, p.assignee,
  p.created_by AS "createdBy", p.failed_reason AS "failedReason", p.traceback, p.note,
  p.started_at AS "startedAt", p.last_modified_at AS "lastModifiedAt",
  p.lease_owner AS "leaseOwner", p.lease_expires_at AS "leaseExpiresAt", p.retry_at AS "retryAt",
  p.parent_id AS "parentId", p.workflow_version AS "workflowVersion"`;

export interface ProcessRow {
  id: string;
  workflowName: string;
  status: ProcessStatus;
  lastStep: string | null;
  stepIndex: number;
  attempt: number;
  isTask: boolean;
  target: string;
  assignee: string | null;
  createdBy: string | null;
  failedReason: string | null;
  traceback: string | null;
  note: string | null;
  startedAt: Date;
  lastModifiedAt: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  /** `waiting`: when the automatic retry is due. */
  retryAt: Date | null;
  /** The process that started it (subProcesses), if any. */
  parentId: string | null;
  /** The version of its workflow it started on (`workflow({ version })`), if named. */
  workflowVersion: string | null;
}

export async function getProcessRow(
  db: Queryable,
  id: string,
): Promise<(ProcessRow & { currentState: State }) | undefined> {
  const { rows } = await db.query<ProcessRow & { currentState: State }>(
    `SELECT ${PROCESS_COLUMNS}, ${CURRENT_STATE} AS "currentState" FROM orchestrator.processes p WHERE p.id = $1`,
    [id],
  );
  return rows[0];
}

export interface StepRow {
  id: number;
  stepIndex: number;
  name: string;
  status: StepStatus;
  state: State;
  error: unknown;
  startedAt: Date;
  completedAt: Date;
  retries: number;
  createdBy: string | null;
  /** The step's group (`stepGroup`), null outside any group. */
  group: string | null;
}

export async function getStepRows(db: Queryable, processId: string): Promise<StepRow[]> {
  const { rows } = await db.query<StepRow>(
    `SELECT id, step_index AS "stepIndex", name, status, state, error, started_at AS "startedAt",
            completed_at AS "completedAt", retries, created_by AS "createdBy",
            step_group AS "group"
       FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
    [processId],
  );
  return rows;
}

/** Whether a process with this id exists (cheap: primary key only). */
export async function processExists(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM orchestrator.processes WHERE id = $1`, [id]);
  return rowCount === 1;
}

/** A process that has not ended, where it stands (for checking it against its workflow). */
export interface UnendedPosition {
  id: string;
  workflowName: string;
  status: ProcessStatus;
  stepIndex: number;
  lastRowName: string | null;
  lastRowIndex: number | null;
  workflowVersion: string | null;
}

/** Up to `limit` processes that have not ended, by id after `afterId` (keyset paging). */
export async function unendedPositions(
  db: Queryable,
  afterId: string | null,
  limit: number,
): Promise<UnendedPosition[]> {
  const { rows } = await db.query<UnendedPosition>(
    `SELECT p.id, p.workflow_name AS "workflowName", p.status, p.step_index AS "stepIndex",
            last.name AS "lastRowName", last.step_index AS "lastRowIndex",
            p.workflow_version AS "workflowVersion"
       FROM orchestrator.processes p
       LEFT JOIN LATERAL (SELECT s.name, s.step_index FROM orchestrator.process_steps s
                           WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1) last ON true
      WHERE p.status <> ALL($1::text[]) AND ($2::uuid IS NULL OR p.id > $2)
      ORDER BY p.id LIMIT $3`,
    [TERMINAL_STATUSES, afterId, limit],
  );
  return rows;
}

/** A process of `workflow` that has not ended (completed or aborted), if any. */
export async function unendedOfWorkflow(
  db: SqlRunner,
  workflow: string,
): Promise<{ id: string; status: ProcessStatus } | undefined> {
  const { rows } = await db.query(
    `SELECT id, status FROM orchestrator.processes
      WHERE workflow_name = $1 AND status <> ALL($2::text[]) LIMIT 1`,
    [workflow, TERMINAL_STATUSES],
  );
  return rows[0] as { id: string; status: ProcessStatus } | undefined;
}

/** Whether the schedule has a process that has not ended (completed or aborted). */
export async function unendedOfSchedule(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM orchestrator.processes
      WHERE schedule_name = $1 AND status <> ALL($2::text[]) LIMIT 1`,
    [name, TERMINAL_STATUSES],
  );
  return rowCount === 1;
}

/** Waiting processes whose retry is due, oldest first (read through processes_retry_idx). */
export async function dueRetries(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT p.id FROM orchestrator.processes p WHERE ${retryDue('p')} ORDER BY p.retry_at LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.id);
}

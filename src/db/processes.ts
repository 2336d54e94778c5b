// Runtime queries on orchestrator.processes and its step rows. Parameters only, no SQL built
// from input; columns aliased to camelCase.
import type { ProcessStatus, State, StepStatus } from '../engine/types.ts';
import {
  processEventSql,
  stepEventSql,
  type ProcessEventRow,
  type StepEventRow,
} from './events.ts';
import type { Queryable } from './pool.ts';

/** The state a process would continue from: its last step row, else its initial input. */
const CURRENT_STATE = `coalesce(
  (SELECT s.state FROM orchestrator.process_steps s WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1),
  (SELECT i.input FROM orchestrator.input_states i
    WHERE i.process_id = p.id AND i.input_type = 'initial_state' ORDER BY i.id LIMIT 1),
  '{}'::jsonb)`;

export const PROCESS_COLUMNS = `p.id, p.workflow_name AS "workflowName", p.status, p.last_step AS "lastStep",
  p.step_index AS "stepIndex", p.attempt, p.is_task AS "isTask", p.target, p.assignee,
  p.created_by AS "createdBy", p.failed_reason AS "failedReason", p.traceback, p.note,
  p.started_at AS "startedAt", p.last_modified_at AS "lastModifiedAt",
  p.lease_owner AS "leaseOwner", p.lease_expires_at AS "leaseExpiresAt"`;

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
}

export async function getStepRows(db: Queryable, processId: string): Promise<StepRow[]> {
  const { rows } = await db.query<StepRow>(
    `SELECT id, step_index AS "stepIndex", name, status, state, error, started_at AS "startedAt",
            completed_at AS "completedAt", retries, created_by AS "createdBy"
       FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
    [processId],
  );
  return rows;
}

export interface Claim {
  id: string;
  workflowName: string;
  stepIndex: number;
  attempt: number;
  leaseToken: string;
  createdBy: string | null;
  state: State;
  /** Name and index of the last step row, to check the definition still matches. */
  lastRowName: string | null;
  lastRowIndex: number | null;
  /** The `running` event of the claim, to publish once it committed. */
  event: ProcessEventRow;
}

/**
 * Claims processes for running: compare-and-set from `created`/`resumed`, or from `running` whose
 * lease expired, to `running` with a fresh lease token each. Returns the claims that succeeded
 * (the others are someone else's, or not runnable), with the state each continues from.
 */
export async function claimProcesses(
  db: Queryable,
  ids: readonly string[],
  owner: string,
  leaseSeconds: number,
): Promise<Claim[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<Claim>({
    name: 'orchestrator-claim-processes',
    text: `WITH c AS (
       UPDATE orchestrator.processes
          SET status = 'running', lease_owner = $2, lease_token = gen_random_uuid(),
              lease_expires_at = now() + make_interval(secs => $3), last_modified_at = now(),
              version = version + 1
        WHERE id = ANY($1::uuid[])
          AND (status IN ('created', 'resumed') OR (status = 'running' AND lease_expires_at < now()))
       RETURNING *)
     SELECT c.id, c.workflow_name AS "workflowName", c.step_index AS "stepIndex", c.attempt,
            c.lease_token AS "leaseToken", c.created_by AS "createdBy",
            coalesce(last.state, init.input, '{}'::jsonb) AS state,
            last.name AS "lastRowName", last.step_index AS "lastRowIndex",
            ${processEventSql('c')} AS event
       FROM c
       LEFT JOIN LATERAL (SELECT s.state, s.name, s.step_index FROM orchestrator.process_steps s
                           WHERE s.process_id = c.id ORDER BY s.id DESC LIMIT 1) last ON true
       LEFT JOIN LATERAL (SELECT i.input FROM orchestrator.input_states i
                           WHERE i.process_id = c.id AND i.input_type = 'initial_state'
                           ORDER BY i.id LIMIT 1) init ON last.state IS NULL`,
    values: [ids, owner, leaseSeconds],
  });
  return rows;
}

/** Claims one process (see claimProcesses); undefined when someone else has it. */
export async function claimProcess(
  db: Queryable,
  id: string,
  owner: string,
  leaseSeconds: number,
): Promise<Claim | undefined> {
  return (await claimProcesses(db, [id], owner, leaseSeconds))[0];
}

export interface StepCommit {
  id: string;
  leaseToken: string;
  index: number;
  name: string;
  stepStatus: StepStatus;
  /** Full state snapshot to store in the step row. */
  state: State;
  /** `state` as JSON, when the caller has it already (a big state that a step left unchanged). */
  stateJson?: string | undefined;
  error?: { name: string; message: string } | undefined;
  startedAt: Date;
  createdBy: string | null;
  /** The process afterwards. `running` keeps (and extends) the lease; anything else releases it. */
  processStatus: ProcessStatus;
  nextIndex: number;
  nextAttempt: number;
  failedReason?: string | undefined;
  traceback?: string | undefined;
  leaseSeconds: number;
}

/** What a step commit wrote: nothing when the lease was lost, else the events to publish. */
export type CommitResult =
  | { held: false }
  /** `events` null: committed by an earlier try whose answer was lost; its events are unknown. */
  | { held: true; events: [StepEventRow, ProcessEventRow] | null };

/**
 * Commits one step: the step row and the process row in one statement (one transaction), fenced
 * by the lease token. A repeated identical failure bumps `retries` on the existing failed row.
 * `held: false` when the lease was lost: nothing was written.
 */
export async function commitStep(db: Queryable, c: StepCommit): Promise<CommitResult> {
  const { rows } = await db.query<{ process: ProcessEventRow | null; step: StepEventRow | null }>({
    name: 'orchestrator-commit-step',
    text: `WITH p AS (
       UPDATE orchestrator.processes
          SET step_index = $3, attempt = $4, last_step = $5, status = $6::text,
              failed_reason = $7, traceback = $8, last_modified_at = now(),
              lease_expires_at = CASE WHEN $6::text = 'running' THEN now() + make_interval(secs => $9) END,
              lease_token = CASE WHEN $6::text = 'running' THEN lease_token END,
              lease_owner = CASE WHEN $6::text = 'running' THEN lease_owner END,
              version = version + 1
        WHERE id = $1 AND lease_token = $2
       RETURNING *),
     repeated AS (
       UPDATE orchestrator.process_steps s SET retries = s.retries + 1, completed_at = now()
         FROM p
        WHERE $11::text = 'failed' AND s.process_id = p.id AND s.status = 'failed'
          AND s.step_index = $10 AND s.error->>'message' = $13::jsonb->>'message'
          AND s.id = (SELECT max(id) FROM orchestrator.process_steps WHERE process_id = p.id)
       RETURNING ${stepEventSql('s')} AS event),
     inserted AS (
       INSERT INTO orchestrator.process_steps AS s
         (process_id, step_index, name, status, state, error, started_at, created_by)
       SELECT p.id, $10, $5, $11, $12, $13, $14, $15 FROM p
        WHERE NOT EXISTS (SELECT 1 FROM repeated)
       RETURNING ${stepEventSql('s')} AS event)
     SELECT ${processEventSql('p')} AS process,
            coalesce((SELECT event FROM inserted), (SELECT event FROM repeated)) AS step
       FROM p`,
    values: [
      c.id,
      c.leaseToken,
      c.nextIndex,
      c.nextAttempt,
      c.name,
      c.processStatus,
      c.failedReason ?? null,
      c.traceback ?? null,
      c.leaseSeconds,
      c.index,
      c.stepStatus,
      c.stateJson ?? JSON.stringify(c.state),
      c.error ? JSON.stringify(c.error) : null,
      c.startedAt,
      c.createdBy,
    ],
  });
  const row = rows[0];
  return row?.process && row.step
    ? { held: true, events: [row.step, row.process] }
    : { held: false };
}

/** A lease a runner holds: the process and its fencing token. */
export interface Lease {
  id: string;
  leaseToken: string;
}

/**
 * Extends every lease a runner holds in one statement (one commit per runner and interval, not one
 * per process); returns the ids whose lease was lost (aborted, or taken over after expiry).
 */
export async function heartbeatLeases(
  db: Queryable,
  leases: readonly Lease[],
  leaseSeconds: number,
): Promise<string[]> {
  if (leases.length === 0) return [];
  const { rows } = await db.query<{ id: string }>({
    name: 'orchestrator-heartbeat-leases',
    text: `WITH l AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS l (id, token)),
     held AS (
       UPDATE orchestrator.processes p SET lease_expires_at = now() + make_interval(secs => $3)
         FROM l WHERE p.id = l.id AND p.lease_token = l.token
       RETURNING p.id)
     SELECT l.id FROM l WHERE l.id NOT IN (SELECT id FROM held)`,
    values: [leases.map((l) => l.id), leases.map((l) => l.leaseToken), leaseSeconds],
  });
  return rows.map((r) => r.id);
}

/** Extends one lease; false when it was lost (see heartbeatLeases). */
export async function heartbeat(
  db: Queryable,
  id: string,
  token: string,
  leaseSeconds: number,
): Promise<boolean> {
  const lost = await heartbeatLeases(db, [{ id, leaseToken: token }], leaseSeconds);
  return lost.length === 0;
}

/**
 * Gives a process back (graceful shutdown): `resumed`, so any runner may continue it at once.
 * Returns its event, or undefined when the lease was already lost.
 */
export async function releaseLease(
  db: Queryable,
  id: string,
  token: string,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `UPDATE orchestrator.processes p
        SET status = 'resumed', lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL,
            last_modified_at = now(), version = version + 1
      WHERE id = $1 AND lease_token = $2
      RETURNING ${processEventSql('p')} AS event`,
    [id, token],
  );
  return rows[0]?.event;
}

/**
 * Aborts a process that is not completed/aborted: status `aborted`, lease revoked (a runner still
 * in a step can no longer commit), and an `abort` step row holding the current state.
 * Returns its events, or undefined when the process is already terminal or does not exist.
 */
export async function abortProcessRow(
  db: Queryable,
  id: string,
  user: string | null,
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = 'aborted', lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL,
              last_modified_at = now(), last_step = 'Abort', version = version + 1
        WHERE id = $1 AND status NOT IN ('completed', 'aborted')
       RETURNING p.id, p.step_index, ${CURRENT_STATE} AS state, ${processEventSql('p')} AS event),
     s AS (
       INSERT INTO orchestrator.process_steps AS s
         (process_id, step_index, name, status, state, started_at, created_by)
       SELECT id, step_index, 'Abort', 'abort', state, now(), $2 FROM p
       RETURNING ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p, s`,
    [id, user],
  );
  const row = rows[0];
  return row ? [row.step, row.process] : undefined;
}

/** Records user input on resume of a suspended process: the input step cleared with the merged state. */
export async function resumeSuspended(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    input: State;
    state: State;
    user: string | null;
    nextStatus: ProcessStatus;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = $5::text, step_index = $2 + 1, attempt = 1, last_step = $3,
              failed_reason = NULL, traceback = NULL, last_modified_at = now(),
              version = version + 1
        WHERE id = $1 AND status = 'suspended' AND step_index = $2
       RETURNING p.id, p.last_modified_at, ${processEventSql('p')} AS event),
     i AS (INSERT INTO orchestrator.input_states (process_id, input, input_type)
           SELECT id, $4, 'user_input' FROM p),
     s AS (
       INSERT INTO orchestrator.process_steps AS s
         (process_id, step_index, name, status, state, started_at, created_by)
       SELECT id, $2, $3, 'success', $6, last_modified_at, $7 FROM p
       RETURNING ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p, s`,
    [r.id, r.index, r.name, JSON.stringify(r.input), r.nextStatus, JSON.stringify(r.state), r.user],
  );
  const row = rows[0];
  return row ? [row.step, row.process] : undefined;
}

/** Marks a process resumable-and-resumed (failed, waiting, …): compare-and-set on its status. */
export async function markResumed(
  db: Queryable,
  id: string,
  from: readonly ProcessStatus[],
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `UPDATE orchestrator.processes p
        SET status = 'resumed', last_modified_at = now(), version = version + 1
      WHERE id = $1 AND status = ANY($2::text[])
      RETURNING ${processEventSql('p')} AS event`,
    [id, from],
  );
  return rows[0]?.event;
}

/** Ends a process that cannot run (its workflow changed or vanished) as `failed`, fenced by the lease. */
export async function failClaimed(
  db: Queryable,
  id: string,
  token: string,
  reason: string,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `UPDATE orchestrator.processes p
        SET status = 'failed', failed_reason = $3, traceback = NULL, lease_token = NULL,
            lease_owner = NULL, lease_expires_at = NULL, last_modified_at = now(),
            version = version + 1
      WHERE id = $1 AND lease_token = $2
      RETURNING ${processEventSql('p')} AS event`,
    [id, token, reason],
  );
  return rows[0]?.event;
}

/** Whether a process with this id exists (cheap: primary key only). */
export async function processExists(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM orchestrator.processes WHERE id = $1`, [id]);
  return rowCount === 1;
}

// Every statement that writes step rows or leases: where a process changes status or position.
// The engine decides what to write (src/engine/transitions.ts); these statements write it, each
// in one statement (one transaction), each fenced: by the lease token for a runner's commits, by
// a compare-and-set on status and position for the API's (resume, callback, abort, timeout).
//
// Where a step is committed:
// - a runner's step: `commitStep` (one step) or `commitPlainSteps` (plain steps of several
//   processes in one statement, the group commit); kept side by side below and tested to write
//   the same rows (test/step-writes.test.ts);
// - resume of an input step with the user's input: `resumeSuspended`;
// - a callback's answer: `resolveCallback`; a callback past its time: `timeOutCallbacks`;
// - abort: `abortProcessRow`.
// Leases: `claimProcesses` and `insertProcesses` (claim at insert) take them, `heartbeatLeases`
// extends them, the commits above keep or release them, `releaseLease` gives one back.
//
// Parameters only, no SQL built from input; status sets come from ./model.ts as parameters.
import {
  STARTABLE_STATUSES,
  TERMINAL_STATUSES,
  type ProcessStatus,
  type State,
  type StepStatus,
} from './model.ts';
import {
  processEventSql,
  stepEventSql,
  type ProcessEventRow,
  type StepEventRow,
} from './events.ts';
import type { Queryable } from './pool.ts';

// ---------------------------------------------------------------------------------------------
// Shared fragments

/** The state a process (alias `p`) would continue from: its last step row, else its initial input. */
export const CURRENT_STATE = `coalesce(
  (SELECT s.state FROM orchestrator.process_steps s WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1),
  (SELECT i.input FROM orchestrator.input_states i
    WHERE i.process_id = p.id AND i.input_type = 'initial_state' ORDER BY i.id LIMIT 1),
  '{}'::jsonb)`;

/** SET items that take a process's lease away. */
const RELEASE_LEASE = `lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL`;

/**
 * SET items of a runner's commit: a process that stays `running` keeps its lease, extended by
 * `secs`; any other status releases it.
 */
const leaseAfter = (status: string, secs: string, alias: string) => `
  lease_expires_at = CASE WHEN ${status} = 'running' THEN now() + make_interval(secs => ${secs}) END,
  lease_token = CASE WHEN ${status} = 'running' THEN ${alias}.lease_token END,
  lease_owner = CASE WHEN ${status} = 'running' THEN ${alias}.lease_owner END`;

/**
 * Whether a runner may claim the process `alias`: started or resumed (`startable`, the parameter
 * holding STARTABLE_STATUSES) and not queued for a resource lock, running with an expired lease
 * (its runner died), or waiting for a retry that is due.
 */
const runnable = (alias: string, startable: string) => `(
  (${alias}.status = ANY(${startable}::text[])
   AND NOT EXISTS (SELECT 1 FROM orchestrator.resource_lock_waiters w WHERE w.process_id = ${alias}.id))
  OR (${alias}.status = 'running' AND ${alias}.lease_expires_at < now())
  OR (${alias}.status = 'waiting' AND ${alias}.retry_at <= now()))`;

/** Whether the engine is paused (the global lock is set): read in the statement that needs it. */
const PAUSED = `(SELECT global_lock FROM orchestrator.engine_settings)`;

/**
 * The status a runner's commit leaves the process in: the one it asks for, except that a process
 * that would go on `running` while the engine is paused stops before its next step and is given
 * back (`resumed`, no lease), ready to continue once the lock is cleared.
 */
const statusAfter = (status: string) =>
  `(CASE WHEN ${status} = 'running' AND ${PAUSED} THEN 'resumed' ELSE ${status} END)`;

/** The columns of a step row insert, in the order the commits give them. */
const STEP_COLUMNS = `process_id, step_index, name, status, state, error, started_at, created_by, step_group`;

// ---------------------------------------------------------------------------------------------
// Leases: insert with claim, claim, heartbeat, give back

export interface Claim {
  id: string;
  workflowName: string;
  stepIndex: number;
  attempt: number;
  leaseToken: string;
  /** Whom the steps are done for: the user of the last resume, retry or callback, else the creator. */
  createdBy: string | null;
  state: State;
  /** Name, index and status of the last step row, to check the definition still matches. */
  lastRowName: string | null;
  lastRowIndex: number | null;
  lastRowStatus: StepStatus | null;
  /** The process that started it (subProcesses), if any. */
  parentId: string | null;
  /** The `running` event of the claim, to publish once it committed. */
  event: ProcessEventRow;
}

export interface NewProcess {
  id: string;
  workflowName: string;
  target: string;
  isTask: boolean;
  createdBy: string | null;
  input: State;
  /** Claimed at insert by this runner (status `running` with a fresh lease), or left `created`. */
  lease?: { owner: string; leaseSeconds: number } | undefined;
  /** The schedule that started it. */
  scheduleName?: string | undefined;
  /** The resource keys it holds from start to end (see acquireLocks). */
  lockKeys?: readonly string[] | undefined;
  /** The version of its workflow it starts on. */
  workflowVersion?: string | undefined;
}

/** What an insert wrote: its event, and the claim when it was claimed at insert. */
export interface Inserted {
  event: ProcessEventRow;
  claim?: Claim | undefined;
}

/**
 * Inserts processes and their initial states in one statement, unless the global lock is set
 * (checked in the same statement: no separate read, no race with a pause). Each is `created`, or
 * with `lease` already `running` for that runner: the claim without a commit of its own. Results
 * in the order given; undefined for all when the engine is paused and nothing was written.
 */
export async function insertProcesses(
  db: Queryable,
  ps: readonly NewProcess[],
): Promise<(Inserted | undefined)[]> {
  const inputs = ps.map((p) => JSON.stringify(p.input));
  const { rows } = await db.query<{
    id: string;
    event: ProcessEventRow;
    leaseToken: string | null;
  }>({
    name: 'orchestrator-insert-processes',
    text: `WITH n AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::boolean[], $4::text[], $5::text[],
                            $6::jsonb[], $7::text[], $8::int[], $9::text[], $10::text[],
                            $11::text[])
         AS n (id, workflow_name, is_task, target, created_by, input, lease_owner, lease_seconds,
               schedule_name, lock_keys, workflow_version)),
     p AS (
       INSERT INTO orchestrator.processes
         (id, workflow_name, status, is_task, target, created_by, lease_owner, lease_token,
          lease_expires_at, schedule_name, lock_keys, workflow_version)
       SELECT n.id, n.workflow_name,
              CASE WHEN n.lease_owner IS NULL THEN 'created' ELSE 'running' END,
              n.is_task, n.target, n.created_by, n.lease_owner,
              CASE WHEN n.lease_owner IS NULL THEN NULL ELSE gen_random_uuid() END,
              CASE WHEN n.lease_owner IS NULL THEN NULL
                   ELSE now() + make_interval(secs => n.lease_seconds) END,
              n.schedule_name, n.lock_keys::text[], n.workflow_version
         FROM n
        WHERE NOT (SELECT global_lock FROM orchestrator.engine_settings)
       RETURNING *),
     i AS (INSERT INTO orchestrator.input_states (process_id, input, input_type)
           SELECT n.id, n.input, 'initial_state' FROM n JOIN p ON p.id = n.id)
     SELECT p.id, ${processEventSql('p')} AS event, p.lease_token AS "leaseToken" FROM p`,
    values: [
      ps.map((p) => p.id),
      ps.map((p) => p.workflowName),
      ps.map((p) => p.isTask),
      ps.map((p) => p.target),
      ps.map((p) => p.createdBy),
      inputs,
      ps.map((p) => p.lease?.owner ?? null),
      ps.map((p) => p.lease?.leaseSeconds ?? 0),
      ps.map((p) => p.scheduleName ?? null),
      // One array per process, passed as the text of a Postgres array (arrays of arrays must be
      // rectangular as parameters).
      ps.map((p) => (p.lockKeys ? toPgArray(p.lockKeys) : null)),
      ps.map((p) => p.workflowVersion ?? null),
    ],
  });
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ps.map((p, i): Inserted | undefined => {
    const row = byId.get(p.id);
    if (!row) return undefined;
    const claim: Claim | undefined = row.leaseToken
      ? {
          id: p.id,
          workflowName: p.workflowName,
          stepIndex: 0,
          attempt: 1,
          leaseToken: row.leaseToken,
          createdBy: p.createdBy,
          // As a claim would read it back: the stored JSON.
          state: JSON.parse(inputs[i]!) as State,
          lastRowName: null,
          lastRowIndex: null,
          lastRowStatus: null,
          parentId: null,
          event: row.event,
        }
      : undefined;
    return { event: row.event, claim };
  });
}

/** The events of a statement that wrote one step row and changed its process, if it applied. */
const stepAndProcess = (
  rows: { step: StepEventRow; process: ProcessEventRow }[],
): [StepEventRow, ProcessEventRow] | undefined =>
  rows[0] ? [rows[0].step, rows[0].process] : undefined;

/** A Postgres array literal of strings (every element quoted). */
function toPgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

/** A resource key and the process that holds it. */
export interface LockHolder {
  key: string;
  holder: string;
}

/**
 * Inside the transaction that inserted process `id`: takes every key of `keys`, or none. Returns
 * the keys held by others when not all could be taken (their holders, where already committed);
 * with `queue`, the process is then queued for all its keys instead (not claimable until it is
 * given them: see orchestrator.grant_locks).
 */
export async function acquireLocks(
  tx: Queryable,
  id: string,
  keys: readonly string[],
  queue: boolean,
): Promise<LockHolder[] | undefined> {
  const { rows } = await tx.query<{ got: number; held: LockHolder[] | null }>(
    `WITH ins AS (
       INSERT INTO orchestrator.resource_locks (key, process_id)
       SELECT k, $1 FROM unnest($2::text[]) k ON CONFLICT (key) DO NOTHING RETURNING key)
     SELECT (SELECT count(*)::int FROM ins) AS got,
            (SELECT json_agg(json_build_object('key', l.key, 'holder', l.process_id) ORDER BY l.key)
               FROM orchestrator.resource_locks l
              WHERE l.key = ANY($2::text[]) AND l.process_id <> $1) AS held`,
    [id, keys],
  );
  const row = rows[0]!;
  if (row.got === keys.length) return undefined;
  // All or none: the keys taken go back.
  await tx.query(`DELETE FROM orchestrator.resource_locks WHERE process_id = $1`, [id]);
  if (queue) {
    await tx.query(
      `INSERT INTO orchestrator.resource_lock_waiters (process_id, key)
       SELECT $1, k FROM unnest($2::text[]) k`,
      [id, keys],
    );
  }
  return row.held ?? [];
}

/** The locks a process holds and the keys it is queued for. */
export async function locksOf(
  db: Queryable,
  id: string,
): Promise<{ held: string[]; waitingFor: string[] }> {
  const { rows } = await db.query<{ held: string[]; waitingFor: string[] }>(
    `SELECT ARRAY(SELECT key FROM orchestrator.resource_locks WHERE process_id = $1 ORDER BY key) AS held,
            ARRAY(SELECT key FROM orchestrator.resource_lock_waiters WHERE process_id = $1 ORDER BY key)
              AS "waitingFor"`,
    [id],
  );
  return rows[0] ?? { held: [], waitingFor: [] };
}

/**
 * Claims processes for running: compare-and-set from any runnable status (see `runnable`) to
 * `running` with a fresh lease token each, unless the engine is paused. Returns the claims that succeeded (the others are
 * someone else's, or not runnable), with the state each continues from.
 */
export async function claimProcesses(
  db: Queryable,
  ids: readonly string[],
  owner: string,
  leaseSeconds: number,
  /** Only processes of these workflows (the runner's): others are left to runners that know them. */
  workflows?: readonly string[],
): Promise<Claim[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<Claim>({
    name: 'orchestrator-claim-processes',
    text: `WITH c AS (
       UPDATE orchestrator.processes p
          SET status = 'running', lease_owner = $2, lease_token = gen_random_uuid(),
              lease_expires_at = now() + make_interval(secs => $3), last_modified_at = now(),
              retry_at = NULL, version = version + 1
        WHERE id = ANY($1::uuid[]) AND ${runnable('p', '$4')} AND NOT ${PAUSED}
          AND ($5::text[] IS NULL OR workflow_name = ANY($5::text[]))
       RETURNING *)
     SELECT c.id, c.workflow_name AS "workflowName", c.step_index AS "stepIndex", c.attempt,
            c.lease_token AS "leaseToken", coalesce(c.acting_user, c.created_by) AS "createdBy",
            coalesce(last.state, init.input, '{}'::jsonb) AS state,
            last.name AS "lastRowName", last.step_index AS "lastRowIndex",
            last.status AS "lastRowStatus", c.parent_id AS "parentId", ${processEventSql('c')} AS event
       FROM c
       LEFT JOIN LATERAL (SELECT s.state, s.name, s.step_index, s.status FROM orchestrator.process_steps s
                           WHERE s.process_id = c.id ORDER BY s.id DESC LIMIT 1) last ON true
       LEFT JOIN LATERAL (SELECT i.input FROM orchestrator.input_states i
                           WHERE i.process_id = c.id AND i.input_type = 'initial_state'
                           ORDER BY i.id LIMIT 1) init ON last.state IS NULL`,
    values: [ids, owner, leaseSeconds, STARTABLE_STATUSES, workflows ?? null],
  });
  return rows;
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
        SET status = 'resumed', ${RELEASE_LEASE}, last_modified_at = now(), version = version + 1
      WHERE id = $1 AND lease_token = $2
      RETURNING ${processEventSql('p')} AS event`,
    [id, token],
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
        SET status = 'failed', failed_reason = $3, traceback = NULL, ${RELEASE_LEASE},
            last_modified_at = now(), version = version + 1
      WHERE id = $1 AND lease_token = $2
      RETURNING ${processEventSql('p')} AS event`,
    [id, token, reason],
  );
  return rows[0]?.event;
}

// ---------------------------------------------------------------------------------------------
// A runner's step commits: one, or plain ones of several processes together

/** A callback handed out by a callback step, written with its `awaiting_callback` commit. */
export interface NewCallback {
  /** SHA-256 of the token (the token itself is never stored). */
  tokenHash: Buffer;
  /** When it times out; undefined: never. */
  expiresAt?: Date | undefined;
}

export interface StepCommit {
  id: string;
  leaseToken: string;
  index: number;
  name: string;
  /** The step's group (`stepGroup`), if any. */
  group?: string | undefined;
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
  /** `waiting`: when the retry is due. */
  retryAt?: Date | undefined;
  /** `awaiting_callback`: the callback to record. */
  callback?: NewCallback | undefined;
  /** A subProcesses step: the children to start in the same transaction (see insertChildren). */
  children?: NewChild[] | undefined;
  leaseSeconds: number;
}

/** What a step commit wrote: nothing when the lease was lost, else the events to publish. */
export type CommitResult =
  | { held: false }
  /** `events` null: committed by an earlier try whose answer was lost; its events are unknown. */
  | {
      held: true;
      events: [StepEventRow, ProcessEventRow] | null;
      /** Events of what the commit wrote besides (children started). */
      more?: ProcessEventRow[];
    };

/**
 * Commits one step: the step row and the process row in one statement (one transaction), fenced
 * by the lease token. While the engine is paused a process that would go on is given back instead
 * (see `statusAfter`): the process event returned says so. A failure repeated at the same step (the same error again, or any error of
 * a retry step that is waiting) updates the last row and bumps its `retries` rather than adding
 * a row. An `awaiting_callback` commit records its callback and cancels older ones of the process.
 * `held: false` when the lease was lost: nothing was written.
 */
export async function commitStep(db: Queryable, c: StepCommit): Promise<CommitResult> {
  const { rows } = await db.query<{ process: ProcessEventRow | null; step: StepEventRow | null }>({
    name: 'orchestrator-commit-step',
    text: `WITH p AS (
       UPDATE orchestrator.processes p
          SET step_index = $3, attempt = $4, last_step = $5, status = ${statusAfter('$6::text')},
              failed_reason = $7, traceback = $8, last_modified_at = now(), retry_at = $16,
              ${leaseAfter(statusAfter('$6::text'), '$9', 'p')}, version = version + 1
        WHERE id = $1 AND lease_token = $2
       RETURNING *),
     repeated AS (
       UPDATE orchestrator.process_steps s
          SET retries = s.retries + 1, completed_at = now(), status = $11, error = $13
         FROM p
        WHERE $11::text IN ('failed', 'waiting') AND s.process_id = p.id
          AND s.status IN ('failed', 'waiting') AND s.step_index = $10
          AND (s.status = 'waiting' OR $11::text = 'waiting'
               OR s.error->>'message' = $13::jsonb->>'message')
          AND s.id = (SELECT max(id) FROM orchestrator.process_steps WHERE process_id = p.id)
       RETURNING ${stepEventSql('s')} AS event),
     inserted AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT p.id, $10, $5, $11, $12, $13, $14, $15, $17 FROM p
        WHERE NOT EXISTS (SELECT 1 FROM repeated)
       RETURNING ${stepEventSql('s')} AS event),
     superseded AS (
       UPDATE orchestrator.callbacks cb SET status = 'cancelled', resolved_at = now()
         FROM p
        WHERE $11::text = 'awaiting_callback' AND cb.process_id = p.id AND cb.status = 'pending'),
     callback AS (
       INSERT INTO orchestrator.callbacks (process_id, step_index, token_hash, expires_at)
       SELECT p.id, $10, $18, $19 FROM p WHERE $11::text = 'awaiting_callback')
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
      c.retryAt ?? null,
      c.group ?? null,
      c.callback?.tokenHash ?? null,
      c.callback?.expiresAt ?? null,
    ],
  });
  const row = rows[0];
  return row?.process && row.step
    ? { held: true, events: [row.step, row.process] }
    : { held: false };
}

/** A commit `commitPlainSteps` can take: a cleared step that leaves the process running or completed. */
export function isPlainCommit(c: StepCommit): boolean {
  return (
    (c.stepStatus === 'success' || c.stepStatus === 'skipped') &&
    (c.processStatus === 'running' || c.processStatus === 'completed') &&
    c.error === undefined &&
    c.nextAttempt === 1 &&
    c.retryAt === undefined &&
    c.callback === undefined &&
    c.children === undefined
  );
}

/**
 * Commits plain steps (see isPlainCommit) of distinct processes together: one statement, one
 * transaction, one WAL flush. Each row stays fenced by its own lease token. Returns, per commit,
 * what `commitStep` would have (held: false, nothing written for it, when its lease was lost).
 * All share one `leaseSeconds`.
 */
export async function commitPlainSteps(
  db: Queryable,
  commits: readonly StepCommit[],
  leaseSeconds: number,
): Promise<CommitResult[]> {
  const { rows } = await db.query<{ id: string; process: ProcessEventRow; step: StepEventRow }>({
    name: 'orchestrator-commit-steps',
    text: `WITH i AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::int[],
                            $7::text[], $8::jsonb[], $9::timestamptz[], $10::text[], $12::text[])
         AS i (id, token, step_index, name, step_status, next_index, process_status, state,
               started_at, created_by, step_group)),
     p AS (
       UPDATE orchestrator.processes p
          SET step_index = i.next_index, attempt = 1, last_step = i.name,
              status = ${statusAfter('i.process_status')},
              failed_reason = NULL, traceback = NULL, last_modified_at = now(), retry_at = NULL,
              ${leaseAfter(statusAfter('i.process_status'), '$11', 'p')}, version = p.version + 1
         FROM i
        WHERE p.id = i.id AND p.lease_token = i.token
       RETURNING p.id, ${processEventSql('p')} AS event),
     inserted AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT i.id, i.step_index, i.name, i.step_status, i.state, NULL, i.started_at,
              i.created_by, i.step_group
         FROM i JOIN p ON p.id = i.id
       RETURNING s.process_id, ${stepEventSql('s')} AS event)
     SELECT p.id, p.event AS process, inserted.event AS step
       FROM p JOIN inserted ON inserted.process_id = p.id`,
    values: [
      commits.map((c) => c.id),
      commits.map((c) => c.leaseToken),
      commits.map((c) => c.index),
      commits.map((c) => c.name),
      commits.map((c) => c.stepStatus),
      commits.map((c) => c.nextIndex),
      commits.map((c) => c.processStatus),
      commits.map((c) => c.stateJson ?? JSON.stringify(c.state)),
      commits.map((c) => c.startedAt),
      commits.map((c) => c.createdBy),
      leaseSeconds,
      commits.map((c) => c.group ?? null),
    ],
  });
  const held = new Map(rows.map((r) => [r.id, r]));
  return commits.map((c): CommitResult => {
    const r = held.get(c.id);
    return r ? { held: true, events: [r.step, r.process] } : { held: false };
  });
}

// ---------------------------------------------------------------------------------------------
// The API's writes: resume, callbacks, abort (compare-and-set on status and position)

/** Cancels the pending callbacks of the processes of CTE `p` (they were resumed or aborted). */
const CANCEL_CALLBACKS = `UPDATE orchestrator.callbacks cb SET status = 'cancelled', resolved_at = now()
  FROM p WHERE cb.process_id = p.id AND cb.status = 'pending'`;

/** Records user input on resume of a suspended process: the input step cleared with the merged state. */
export async function resumeSuspended(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    group?: string | undefined;
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
              acting_user = $7, version = version + 1
        WHERE id = $1 AND status = 'suspended' AND step_index = $2 AND NOT ${PAUSED}
       RETURNING p.id, p.last_modified_at, ${processEventSql('p')} AS event),
     i AS (INSERT INTO orchestrator.input_states (process_id, input, input_type)
           SELECT id, $4, 'user_input' FROM p),
     s AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT id, $2, $3, 'success', $6, NULL, last_modified_at, $7, $8 FROM p
       RETURNING ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p, s`,
    [
      r.id,
      r.index,
      r.name,
      JSON.stringify(r.input),
      r.nextStatus,
      JSON.stringify(r.state),
      r.user,
      r.group ?? null,
    ],
  );
  return stepAndProcess(rows);
}

/**
 * Marks a process resumed (from failed, waiting, awaiting_callback, …): compare-and-set on its
 * status. A retry that was due later is now, a pending callback is cancelled (the step runs
 * again and hands out a new one).
 */
export async function markResumed(
  db: Queryable,
  id: string,
  from: readonly ProcessStatus[],
  user: string | null,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = 'resumed', retry_at = NULL, last_modified_at = now(), acting_user = $3,
              version = version + 1
        WHERE id = $1 AND status = ANY($2::text[]) AND NOT ${PAUSED}
       RETURNING p.id, ${processEventSql('p')} AS event),
     c AS (${CANCEL_CALLBACKS})
     SELECT event FROM p`,
    [id, from, user],
  );
  return rows[0]?.event;
}

/**
 * Aborts a process that has not ended, and every child process it started (and theirs) that has
 * not: status `aborted`, lease revoked (a runner still in a step can no longer commit), pending
 * callbacks cancelled, queued resource keys given up, and an `abort` step row holding the current
 * state for each. Returns the events (the process's first) and the ids aborted, or undefined when
 * the process has ended or does not exist.
 */
export async function abortProcessRow(
  db: Queryable,
  id: string,
  user: string | null,
): Promise<{ events: (StepEventRow | ProcessEventRow)[]; aborted: string[] } | undefined> {
  const { rows } = await db.query<{ id: string; step: StepEventRow; process: ProcessEventRow }>(
    `WITH RECURSIVE tree AS (
       SELECT id FROM orchestrator.processes WHERE id = $1 AND status <> ALL($3::text[])
       UNION
       SELECT c.id FROM orchestrator.processes c JOIN tree t ON c.parent_id = t.id),
     p AS (
       UPDATE orchestrator.processes p
          SET status = 'aborted', ${RELEASE_LEASE}, retry_at = NULL,
              last_modified_at = now(), last_step = 'Abort', version = version + 1
        WHERE id IN (SELECT id FROM tree) AND status <> ALL($3::text[])
       RETURNING p.id, p.step_index, ${CURRENT_STATE} AS state, ${processEventSql('p')} AS event),
     c AS (${CANCEL_CALLBACKS}),
     -- Queued for resource keys (lockMode queue): it leaves the queue, or it would be given them.
     w AS (DELETE FROM orchestrator.resource_lock_waiters WHERE process_id IN (SELECT id FROM p)),
     s AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT id, step_index, 'Abort', 'abort', state, NULL, now(), $2, NULL FROM p
       RETURNING s.process_id, ${stepEventSql('s')} AS event)
     SELECT p.id, s.event AS step, p.event AS process FROM p JOIN s ON s.process_id = p.id
      ORDER BY p.id = $1 DESC`,
    [id, user, TERMINAL_STATUSES],
  );
  if (rows[0]?.id !== id) return undefined;
  return { events: rows.flatMap((r) => [r.step, r.process]), aborted: rows.map((r) => r.id) };
}

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

/** A callback row, for checking a token and showing a process's callback. */
export interface CallbackRow {
  id: string;
  stepIndex: number;
  tokenHash: Buffer;
  status: 'pending' | 'done' | 'expired' | 'cancelled';
  createdAt: Date;
  expiresAt: Date | null;
  resolvedAt: Date | null;
  progress: unknown;
  progressAt: Date | null;
}

/** The callbacks of a process, latest first. */
export async function getCallbacks(db: Queryable, processId: string): Promise<CallbackRow[]> {
  const { rows } = await db.query<CallbackRow>(
    `SELECT id, step_index AS "stepIndex", token_hash AS "tokenHash", status,
            created_at AS "createdAt", expires_at AS "expiresAt", resolved_at AS "resolvedAt",
            progress, progress_at AS "progressAt"
       FROM orchestrator.callbacks WHERE process_id = $1 ORDER BY id DESC`,
    [processId],
  );
  return rows;
}

/**
 * Applies a callback's answer: the callback `done`, the callback step cleared (`success`, with
 * the payload in `state`) or `failed` (its validation refused the payload), the process on to
 * `nextStatus`. Compare-and-set on the process (awaiting this callback's step) and the callback
 * (pending): of two answers racing, exactly one applies; undefined for the other.
 */
export async function resolveCallback(
  db: Queryable,
  r: {
    processId: string;
    callbackId: string;
    index: number;
    name: string;
    group?: string | undefined;
    state: State;
    stepStatus: 'success' | 'failed';
    error?: { name: string; message: string } | undefined;
    traceback?: string | undefined;
    nextStatus: ProcessStatus;
    user: string | null;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const cleared = r.stepStatus === 'success';
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = $5::text, step_index = $3 + $6::int, attempt = CASE WHEN $6 = 1 THEN 1 ELSE attempt + 1 END,
              last_step = $4, failed_reason = $8, traceback = $9, last_modified_at = now(),
              acting_user = $12, version = version + 1
        WHERE id = $1 AND status = 'awaiting_callback' AND step_index = $3 AND NOT ${PAUSED}
          AND EXISTS (SELECT 1 FROM orchestrator.callbacks
                       WHERE id = $2 AND process_id = $1 AND status = 'pending')
       RETURNING p.id, p.last_modified_at, ${processEventSql('p')} AS event),
     cb AS (
       UPDATE orchestrator.callbacks cb SET status = 'done', resolved_at = now()
         FROM p WHERE cb.id = $2 AND cb.status = 'pending'),
     s AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT id, $3, $4, $7, $10, $11, last_modified_at, $12, $13 FROM p
       RETURNING ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p, s`,
    [
      r.processId,
      r.callbackId,
      r.index,
      r.name,
      r.nextStatus,
      cleared ? 1 : 0,
      r.stepStatus,
      cleared ? null : (r.error?.message ?? null),
      r.traceback ?? null,
      JSON.stringify(r.state),
      r.error ? JSON.stringify(r.error) : null,
      r.user,
      r.group ?? null,
    ],
  );
  return stepAndProcess(rows);
}

/**
 * Stores interim progress of a pending callback (the process stays `awaiting_callback`; its
 * version moves so that watchers hear of it). Undefined when the callback is not pending.
 */
export async function recordCallbackProgress(
  db: Queryable,
  processId: string,
  callbackId: string,
  progress: unknown,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `WITH cb AS (
       UPDATE orchestrator.callbacks SET progress = $3, progress_at = now()
        WHERE id = $2 AND process_id = $1 AND status = 'pending'
       RETURNING process_id)
     UPDATE orchestrator.processes p SET last_modified_at = now(), version = version + 1
       FROM cb WHERE p.id = cb.process_id AND p.status = 'awaiting_callback'
     RETURNING ${processEventSql('p')} AS event`,
    [processId, callbackId, JSON.stringify(progress)],
  );
  return rows[0]?.event;
}

/** The reason a process fails with when its callback did not come in time. */
export const CALLBACK_TIMED_OUT = 'callback timed out';

/**
 * Fails up to `limit` processes whose pending callback is past its time: the callback `expired`,
 * a `failed` step row with the current state, the process `failed` with reason
 * `callback timed out`. Rows locked by another instance are skipped (it is timing them out);
 * the compare-and-set on the process makes a callback answered meanwhile win or lose cleanly.
 */
export async function timeOutCallbacks(
  db: Queryable,
  limit: number,
): Promise<[StepEventRow, ProcessEventRow][]> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    `WITH due AS (
       SELECT id, process_id, step_index FROM orchestrator.callbacks
        WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED),
     p AS (
       UPDATE orchestrator.processes p
          SET status = 'failed', failed_reason = $2, traceback = NULL, attempt = attempt + 1,
              last_modified_at = now(), version = version + 1
         FROM due
        WHERE p.id = due.process_id AND p.status = 'awaiting_callback'
          AND p.step_index = due.step_index
       RETURNING p.id, p.step_index, p.last_step, ${CURRENT_STATE} AS state,
                 (SELECT s.step_group FROM orchestrator.process_steps s
                   WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1) AS step_group,
                 ${processEventSql('p')} AS event),
     -- Expired when its process timed out here; a callback left pending by a process that no
     -- longer waits for it (aborted while its callback was being committed) is cancelled.
     ended AS (
       UPDATE orchestrator.callbacks cb
          SET status = CASE WHEN cb.process_id IN (SELECT id FROM p) THEN 'expired' ELSE 'cancelled' END,
              resolved_at = now()
         FROM due WHERE cb.id = due.id),
     s AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT id, step_index, last_step, 'failed', state,
              jsonb_build_object('name', 'CallbackTimeout', 'message', $2::text), now(), 'timekeeper',
              step_group
         FROM p
       RETURNING s.process_id, ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p JOIN s ON s.process_id = p.id`,
    [limit, CALLBACK_TIMED_OUT],
  );
  return rows.map((r) => [r.step, r.process]);
}

/**
 * When the next retry or callback timeout falls due (null: none ahead), read through their
 * indexes. Only times ahead count: what is due already is handled by whoever looks now.
 */
export async function nextDue(db: Queryable): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT least(
       (SELECT min(retry_at) FROM orchestrator.processes WHERE status = 'waiting' AND retry_at > now()),
       (SELECT min(expires_at) FROM orchestrator.callbacks
         WHERE status = 'pending' AND expires_at > now())) AS at`,
  );
  return rows[0]?.at ?? null;
}

// ---------------------------------------------------------------------------------------------
// Operators' writes: bulk resume, delete, note

/** The statuses `resume-all` retries tasks from. */
export const RETRIED_BY_RESUME_ALL = [
  'failed',
  'waiting',
  'api_unavailable',
  'inconsistent_data',
] as const satisfies readonly ProcessStatus[];

/**
 * Inside a transaction: resumes every task in a status of RETRIED_BY_RESUME_ALL that `allowed`
 * lets through, once, unless a resume-all runs already (then null: an advisory lock held to the
 * end of the transaction decides). Returns each with the status it was resumed from and its event.
 */
export async function resumeAllTasks(
  tx: Queryable,
  user: string | null,
  allowed: (task: { id: string; workflowName: string; status: ProcessStatus }) => boolean,
): Promise<
  | {
      id: string;
      from: ProcessStatus;
      isTask: boolean;
      target: string;
      event: ProcessEventRow;
    }[]
  | null
> {
  const { rows: lock } = await tx.query<{ ok: boolean }>(
    `SELECT pg_try_advisory_xact_lock(hashtext('orchestrator.resume-all')) AS ok`,
  );
  if (!lock[0]?.ok) return null;
  const { rows: candidates } = await tx.query<{
    id: string;
    workflowName: string;
    status: ProcessStatus;
  }>(
    `SELECT id, workflow_name AS "workflowName", status FROM orchestrator.processes
      WHERE is_task AND status = ANY($1::text[]) AND NOT ${PAUSED}
      ORDER BY id FOR UPDATE`,
    [RETRIED_BY_RESUME_ALL],
  );
  const ids = candidates.filter(allowed).map((c) => c.id);
  if (ids.length === 0) return [];
  const { rows } = await tx.query<{
    id: string;
    from: ProcessStatus;
    isTask: boolean;
    target: string;
    event: ProcessEventRow;
  }>(
    `WITH old AS (SELECT id, status FROM orchestrator.processes WHERE id = ANY($1::uuid[])),
     p AS (
       UPDATE orchestrator.processes p
          SET status = 'resumed', retry_at = NULL, last_modified_at = now(), acting_user = $2,
              version = version + 1
         FROM old WHERE p.id = old.id
       RETURNING p.id, old.status AS "from", p.is_task AS "isTask", p.target,
                 ${processEventSql('p')} AS event)
     SELECT * FROM p`,
    [ids, user],
  );
  return rows;
}

/**
 * Deletes a task that is not running, with its step rows, inputs and callbacks. Returns whether
 * it was deleted (not: it does not exist, is a workflow, or runs).
 */
export async function deleteTask(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `DELETE FROM orchestrator.processes WHERE id = $1 AND is_task AND status <> 'running'`,
    [id],
  );
  return rowCount === 1;
}

/** Sets a process's note; its event, or undefined when there is no such process. */
export async function setNote(
  db: Queryable,
  id: string,
  note: string | null,
): Promise<ProcessEventRow | undefined> {
  const { rows } = await db.query<{ event: ProcessEventRow }>(
    `UPDATE orchestrator.processes p SET note = $2, version = version + 1 WHERE id = $1
     RETURNING ${processEventSql('p')} AS event`,
    [id, note],
  );
  return rows[0]?.event;
}

// ---------------------------------------------------------------------------------------------
// The built-in tasks' writes (a safety net and clean-up, not the normal path)

/**
 * Resumes `waiting` processes whose retry is overdue by `overdueSeconds` (the timekeeper or their
 * job should have run them): `resumed`, for the next sweep. Returns their ids.
 */
export async function resumeOverdueRetries(
  db: Queryable,
  overdueSeconds: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE orchestrator.processes
        SET status = 'resumed', retry_at = NULL, version = version + 1,
            last_modified_at = now() - interval '1 hour'
      WHERE status = 'waiting' AND retry_at < now() - make_interval(secs => $1)
      RETURNING id`,
    [overdueSeconds],
  );
  return rows.map((r) => r.id);
}

/**
 * Takes the leases that expired more than `expiredSeconds` ago from their dead runners: the
 * process `resumed`, for the next sweep. Returns their ids.
 */
export async function releaseAbandonedLeases(
  db: Queryable,
  expiredSeconds: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE orchestrator.processes
        SET status = 'resumed', ${RELEASE_LEASE}, version = version + 1,
            last_modified_at = now() - interval '1 hour'
      WHERE status = 'running' AND lease_expires_at < now() - make_interval(secs => $1)
      RETURNING id`,
    [expiredSeconds],
  );
  return rows.map((r) => r.id);
}

/**
 * Deletes up to `limit` tasks that completed more than `days` ago, with their step rows, inputs
 * and callbacks; rows another transaction holds are left for the next batch. Returns how many.
 */
export async function deleteCompletedTasks(
  db: Queryable,
  days: number,
  limit: number,
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM orchestrator.processes WHERE id IN (
       SELECT id FROM orchestrator.processes
        WHERE status = 'completed' AND is_task AND last_modified_at < now() - make_interval(days => $1)
        LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [days, limit],
  );
  return rowCount ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Repairs of a failed step: skip it, or patch the state before retrying it

/** The statuses a step may be skipped or its state patched from. */
export const REPAIRABLE_STATUSES = [
  'failed',
  'inconsistent_data',
] as const satisfies readonly ProcessStatus[];

/**
 * Skips the failed step at `index`: a `skipped` row with the state it was given and the user,
 * the process on past it (`nextStatus`: resumed, or completed when it was the last step).
 * Compare-and-set on status and position; undefined when it did not apply.
 */
export async function skipFailedStep(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    group?: string | undefined;
    state: State;
    user: string | null;
    nextStatus: ProcessStatus;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = $4::text, step_index = $2 + 1, attempt = 1, last_step = $3,
              failed_reason = NULL, traceback = NULL, acting_user = $6,
              last_modified_at = now(), version = version + 1
        WHERE id = $1 AND status = ANY($8::text[]) AND step_index = $2 AND NOT ${PAUSED}
       RETURNING p.id, p.last_modified_at, ${processEventSql('p')} AS event),
     s AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT id, $2, $3, 'skipped', $5, NULL, last_modified_at, $6, $7 FROM p
       RETURNING ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p, s`,
    [
      r.id,
      r.index,
      r.name,
      r.nextStatus,
      JSON.stringify(r.state),
      r.user,
      r.group ?? null,
      REPAIRABLE_STATUSES,
    ],
  );
  return stepAndProcess(rows);
}

/**
 * Patches the state of a process whose step at `index` failed and resumes it: the patch kept as a
 * user input, a `failed` row of that step holding the patched state (the retry continues from it)
 * and naming who patched which keys, the process `resumed`. Compare-and-set like skipFailedStep.
 */
export async function patchAndResume(
  db: Queryable,
  r: {
    id: string;
    index: number;
    name: string;
    group?: string | undefined;
    patch: State;
    state: State;
    user: string | null;
  },
): Promise<[StepEventRow, ProcessEventRow] | undefined> {
  const { rows } = await db.query<{ step: StepEventRow; process: ProcessEventRow }>(
    `WITH p AS (
       UPDATE orchestrator.processes p
          SET status = 'resumed', retry_at = NULL, acting_user = $6, last_modified_at = now(),
              version = version + 1
        WHERE id = $1 AND status = ANY($8::text[]) AND step_index = $2 AND NOT ${PAUSED}
       RETURNING p.id, p.last_modified_at, ${processEventSql('p')} AS event),
     i AS (INSERT INTO orchestrator.input_states (process_id, input, input_type)
           SELECT id, $4, 'user_input' FROM p),
     s AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT id, $2, $3, 'failed', $5,
              jsonb_build_object('name', 'StatePatched',
                'message', format('state patched by %s before the retry: %s', coalesce($6, 'anonymous'),
                                  (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys($4::jsonb) k))),
              last_modified_at, $6, $7 FROM p
       RETURNING ${stepEventSql('s')} AS event)
     SELECT s.event AS step, p.event AS process FROM p, s`,
    [
      r.id,
      r.index,
      r.name,
      JSON.stringify(r.patch),
      JSON.stringify(r.state),
      r.user,
      r.group ?? null,
      REPAIRABLE_STATUSES,
    ],
  );
  return stepAndProcess(rows);
}

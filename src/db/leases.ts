// Leases: a process inserted with its claim, claimed, heartbeated, given back, or failed by its
// runner when it cannot run. Every write here is fenced by the lease token or a compare-and-set.
import { processEventSql, type ProcessEventRow } from './events.ts';
import { PAUSED, RELEASE_LEASE, runnable, toPgArray } from './fragments.ts';
import { STARTABLE_STATUSES, type State, type StepStatus } from './model.ts';
import type { Queryable } from './pool.ts';

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
 * per process); returns the ids whose lease was lost (aborted, or taken over after expiry). While
 * the engine is paused a lease that already expired is not revived: the engine may have said
 * PAUSED since, and its process is continued (its step run again) once the lock is cleared.
 *
 * A row another session holds locked (an operation on it, or a client lost mid-transaction until
 * the server ends it) is skipped this time, not waited for: waiting would hold back the heartbeat
 * of every other lease of the runner, which could then all expire because of one row.
 */
export async function heartbeatLeases(
  db: Queryable,
  leases: readonly Lease[],
  leaseSeconds: number,
): Promise<string[]> {
  if (leases.length === 0) return [];
  const keeps = `p.lease_token = l.token
          AND (p.lease_expires_at > clock_timestamp() OR NOT ${PAUSED})`;
  const { rows } = await db.query<{ id: string }>({
    name: 'orchestrator-heartbeat-leases',
    text: `WITH l AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS l (id, token)),
     free AS (
       SELECT p.id FROM orchestrator.processes p JOIN l ON p.id = l.id
        WHERE ${keeps}
        FOR NO KEY UPDATE OF p SKIP LOCKED),
     held AS (
       UPDATE orchestrator.processes p SET lease_expires_at = now() + make_interval(secs => $3)
         FROM free WHERE p.id = free.id
       RETURNING p.id)
     SELECT l.id FROM l
      WHERE NOT EXISTS (SELECT 1 FROM orchestrator.processes p WHERE p.id = l.id AND ${keeps})
        AND l.id NOT IN (SELECT id FROM held)`,
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

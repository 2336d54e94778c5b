// SQL fragments the statement modules share: each written once.
import type { ProcessEventRow, StepEventRow } from './events.ts';

/** The state a process (alias `p`) would continue from: its last step row, else its initial input. */
export const CURRENT_STATE = `coalesce(
  (SELECT s.state FROM orchestrator.process_steps s WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1),
  (SELECT i.input FROM orchestrator.input_states i
    WHERE i.process_id = p.id AND i.input_type = 'initial_state' ORDER BY i.id LIMIT 1),
  '{}'::jsonb)`;

/** SET items that take a process's lease away. */
export const RELEASE_LEASE = `lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL`;

/**
 * SET items of a runner's commit: a process that stays `running` keeps its lease, extended by
 * `secs`; any other status releases it.
 */
export const leaseAfter = (status: string, secs: string, alias: string) => `
  lease_expires_at = CASE WHEN ${status} = 'running' THEN now() + make_interval(secs => ${secs}) END,
  lease_token = CASE WHEN ${status} = 'running' THEN ${alias}.lease_token END,
  lease_owner = CASE WHEN ${status} = 'running' THEN ${alias}.lease_owner END`;

/**
 * Whether a runner may claim the process `alias`: started or resumed (`startable`, the parameter
 * holding STARTABLE_STATUSES) and not queued for a resource lock, running with an expired lease
 * (its runner died), or waiting for a retry that is due.
 */
export const runnable = (alias: string, startable: string) => `(
  (${alias}.status = ANY(${startable}::text[])
   AND NOT EXISTS (SELECT 1 FROM orchestrator.resource_lock_waiters w WHERE w.process_id = ${alias}.id))
  OR (${alias}.status = 'running' AND ${alias}.lease_expires_at < now())
  OR (${alias}.status = 'waiting' AND ${alias}.retry_at <= now()))`;

/** Whether the engine is paused (the global lock is set): read in the statement that needs it. */
export const PAUSED = `(SELECT global_lock FROM orchestrator.engine_settings)`;

/**
 * The status a runner's commit leaves the process in: the one it asks for, except that a process
 * that would go on `running` while the engine is paused stops before its next step and is given
 * back (`resumed`, no lease), ready to continue once the lock is cleared.
 */
export const statusAfter = (status: string) =>
  `(CASE WHEN ${status} = 'running' AND ${PAUSED} THEN 'resumed' ELSE ${status} END)`;

/** The columns of a step row insert, in the order the commits give them. */
export const STEP_COLUMNS = `process_id, step_index, name, status, state, error, started_at, created_by, step_group`;

// ---------------------------------------------------------------------------------------------
// Leases: insert with claim, claim, heartbeat, give back

/** The events of a statement that wrote one step row and changed its process, if it applied. */
export const stepAndProcess = (
  rows: { step: StepEventRow; process: ProcessEventRow }[],
): [StepEventRow, ProcessEventRow] | undefined =>
  rows[0] ? [rows[0].step, rows[0].process] : undefined;

/** A Postgres array literal of strings (every element quoted). */
export function toPgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

/** Cancels the pending callbacks of the processes of CTE `p` (they were resumed or aborted). */
export const CANCEL_CALLBACKS = `UPDATE orchestrator.callbacks cb SET status = 'cancelled', resolved_at = now()
  FROM p WHERE cb.process_id = p.id AND cb.status = 'pending'`;

// SQL fragments the statement modules share: each written once.
import {
  processEventSql,
  stepEventSql,
  type ProcessEventRow,
  type StepEventRow,
} from './events.ts';

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

/** Whether the process `alias` is queued for resource keys (lockMode queue): it waits for them. */
export const queuedForLocks = (alias: string) =>
  `EXISTS (SELECT 1 FROM orchestrator.resource_lock_waiters w WHERE w.process_id = ${alias}.id)`;

/**
 * The three ways the process `alias` is runnable, each readable on its own through
 * processes_status_idx (the sweepers query them as separate branches): started or resumed
 * (`startable`, the parameter holding STARTABLE_STATUSES) and not queued for a resource lock;
 * running with an expired lease (its runner died); waiting for a retry that is due. With `grace`
 * (a parameter, seconds) a started or resumed process counts once it has been so that long, and a
 * retry once it is due by that long: those nobody picked up in time.
 */
export const runnableWays = (alias: string, startable: string, grace?: string) => ({
  startable:
    `${alias}.status = ANY(${startable}::text[])` +
    (grace === undefined
      ? ''
      : ` AND ${alias}.last_modified_at < now() - make_interval(secs => ${grace})`) +
    ` AND NOT ${queuedForLocks(alias)}`,
  leaseExpired: `${alias}.status = 'running' AND ${alias}.lease_expires_at < now()`,
  retryDue: retryDue(alias, grace),
});

/** Whether the process `alias` waits for a retry that is due (by `grace` seconds, when given). */
export const retryDue = (alias: string, grace?: string) =>
  grace === undefined
    ? `${alias}.status = 'waiting' AND ${alias}.retry_at <= now()`
    : `${alias}.status = 'waiting' AND ${alias}.retry_at < now() - make_interval(secs => ${grace})`;

/**
 * Whether a runner may claim the process `alias`: any of `runnableWays` (with `grace`: runnable
 * and left so that long).
 */
export const runnable = (alias: string, startable: string, grace?: string) => {
  const w = runnableWays(alias, startable, grace);
  return `(
  (${w.startable})
  OR (${w.leaseExpired})
  OR (${w.retryDue}))`;
};

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
// A process changed and a step row written for it, in one statement

/** How a statement changes the processes it writes a step row for (the UPDATE of CTE `p`). */
export interface ProcessUpdate {
  /** SET items (the process row aliased `p`). */
  set: string;
  /** FROM items the update joins (CTEs before it). */
  from?: string;
  /** Its guards: the compare-and-set (or lease fence) the step row depends on. */
  where: string;
  /** Columns `p` returns besides `id` and `event` (its process event), for the CTEs after it. */
  returning?: string;
}

/** CTE `p`: the update of the processes, each returned with its id, `returning` and its event. */
export const processUpdate = (u: ProcessUpdate) => `p AS (
       UPDATE orchestrator.processes p
          SET ${u.set}${u.from === undefined ? '' : `\n         FROM ${u.from}`}
        WHERE ${u.where}
       RETURNING p.id${u.returning === undefined ? '' : `, ${u.returning}`}, ${processEventSql('p')} AS event)`;

/**
 * CTE `name`: the insert of a step row per row of `from` (default `p`, one per process changed),
 * `values` a SELECT list in STEP_COLUMNS order; it returns the row's process id and `event`, its
 * step event.
 */
export const stepInsert = (values: string, from = 'p', name = 's') => `${name} AS (
       INSERT INTO orchestrator.process_steps AS s (${STEP_COLUMNS})
       SELECT ${values}
         FROM ${from}
       RETURNING s.process_id, ${stepEventSql('s')} AS event)`;

/**
 * A statement that changes processes and writes one step row for each, both or neither: the
 * CTEs of `before` (what the update reads; `recursive` when one is), `processUpdate`, the CTEs of
 * `between` (other writes of the processes of `p`), `stepInsert`, then a row per process changed:
 * its `id`, `step` and `process` events (`orderBy` orders them). No row when the update's guards
 * did not hold.
 */
export function stepWrite(w: {
  recursive?: boolean;
  before?: readonly string[];
  update: ProcessUpdate;
  between?: readonly string[];
  /** The step row's values (see stepInsert), over `stepFrom` (default `p`). */
  step: string;
  stepFrom?: string;
  orderBy?: string;
}): string {
  const ctes = [
    ...(w.before ?? []),
    processUpdate(w.update),
    ...(w.between ?? []),
    stepInsert(w.step, w.stepFrom),
  ];
  return `WITH ${w.recursive ? 'RECURSIVE ' : ''}${ctes.join(',\n     ')}
     SELECT p.id, s.event AS step, p.event AS process FROM p JOIN s ON s.process_id = p.id${
       w.orderBy === undefined ? '' : `\n      ORDER BY ${w.orderBy}`
     }`;
}

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

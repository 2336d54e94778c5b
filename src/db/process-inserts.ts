// Inserting processes: one statement for one or many (concurrent starts go together), each
// `created` or, claimed at insert, already `running` for its runner.
import type { State } from '../engine/types.ts';
import { processEventSql, type ProcessEventRow } from './events.ts';
import type { Queryable } from './pool.ts';
import type { Claim } from './processes.ts';

export interface NewProcess {
  id: string;
  workflowName: string;
  target: string;
  isTask: boolean;
  createdBy: string | null;
  input: State;
  /** Claimed at insert by this runner (status `running` with a fresh lease), or left `created`. */
  lease?: { owner: string; leaseSeconds: number } | undefined;
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
                            $6::jsonb[], $7::text[], $8::int[])
         AS n (id, workflow_name, is_task, target, created_by, input, lease_owner, lease_seconds)),
     p AS (
       INSERT INTO orchestrator.processes
         (id, workflow_name, status, is_task, target, created_by, lease_owner, lease_token,
          lease_expires_at)
       SELECT n.id, n.workflow_name,
              CASE WHEN n.lease_owner IS NULL THEN 'created' ELSE 'running' END,
              n.is_task, n.target, n.created_by, n.lease_owner,
              CASE WHEN n.lease_owner IS NULL THEN NULL ELSE gen_random_uuid() END,
              CASE WHEN n.lease_owner IS NULL THEN NULL
                   ELSE now() + make_interval(secs => n.lease_seconds) END
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
          event: row.event,
        }
      : undefined;
    return { event: row.event, claim };
  });
}

/** Inserts one process (see insertProcesses). */
export async function insertProcess(db: Queryable, p: NewProcess): Promise<Inserted | undefined> {
  return (await insertProcesses(db, [p]))[0];
}

// Several step commits of different processes in one statement (one transaction, one WAL flush):
// the group commit of plain steps. Each row stays fenced by its own lease token.
import {
  processEventSql,
  stepEventSql,
  type ProcessEventRow,
  type StepEventRow,
} from './events.ts';
import type { Queryable } from './pool.ts';
import type { CommitResult, StepCommit } from './processes.ts';

/** A commit the batch statement can take: a cleared step that leaves the process running or completed. */
export function isPlainCommit(c: StepCommit): boolean {
  return (
    (c.stepStatus === 'success' || c.stepStatus === 'skipped') &&
    (c.processStatus === 'running' || c.processStatus === 'completed') &&
    c.error === undefined &&
    c.nextAttempt === 1
  );
}

/**
 * Commits plain steps of distinct processes together; returns, per commit, what `commitStep` would
 * have (held: false, nothing written for it, when its lease was lost). All share one `leaseSeconds`.
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
                            $7::text[], $8::jsonb[], $9::timestamptz[], $10::text[])
         AS i (id, token, step_index, name, step_status, next_index, process_status, state,
               started_at, created_by)),
     p AS (
       UPDATE orchestrator.processes p
          SET step_index = i.next_index, attempt = 1, last_step = i.name, status = i.process_status,
              failed_reason = NULL, traceback = NULL, last_modified_at = now(),
              lease_expires_at = CASE WHEN i.process_status = 'running'
                                      THEN now() + make_interval(secs => $11) END,
              lease_token = CASE WHEN i.process_status = 'running' THEN p.lease_token END,
              lease_owner = CASE WHEN i.process_status = 'running' THEN p.lease_owner END,
              version = p.version + 1
         FROM i
        WHERE p.id = i.id AND p.lease_token = i.token
       RETURNING p.id, ${processEventSql('p')} AS event),
     inserted AS (
       INSERT INTO orchestrator.process_steps AS s
         (process_id, step_index, name, status, state, started_at, created_by)
       SELECT i.id, i.step_index, i.name, i.step_status, i.state, i.started_at, i.created_by
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
    ],
  });
  const held = new Map(rows.map((r) => [r.id, r]));
  return commits.map((c): CommitResult => {
    const r = held.get(c.id);
    return r ? { held: true, events: [r.step, r.process] } : { held: false };
  });
}

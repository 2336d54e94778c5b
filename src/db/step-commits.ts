// A runner's step commits, one (`commitStep`) or the plain steps of several processes in one
// statement (`commitPlainSteps`, the group commit), side by side and tested to write the same rows
// (test/step-writes.test.ts). The engine decides what to write (src/engine/transitions.ts); these
// statements write it, fenced by the lease token.
//
// Where else a process changes status or position: resumes.ts (input, resume, abort, repairs),
// callbacks.ts (an answer, a timeout), leases.ts (claims, give-backs), operator-writes.ts,
// maintenance.ts. Parameters only, no SQL built from input; status sets come from ./model.ts as
// parameters.
import type { NewChild } from './children.ts';
import { stepEventSql, type ProcessEventRow, type StepEventRow } from './events.ts';
import { leaseAfter, processUpdate, statusAfter, stepInsert, stepWrite } from './fragments.ts';
import type { ProcessStatus, State, StepStatus } from './model.ts';
import type { Queryable } from './pool.ts';

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
  /** `suspended` at an input step with an assignee: the role recorded on the process while it waits. */
  assignee?: string | undefined;
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
    text: `WITH ${processUpdate({
      set: `step_index = $3, attempt = $4, last_step = $5, status = ${statusAfter('$6::text')},
              failed_reason = $7, traceback = $8, last_modified_at = now(), retry_at = $16,
              assignee = $20,
              ${leaseAfter(statusAfter('$6::text'), '$9', 'p')}, version = version + 1`,
      where: `id = $1 AND lease_token = $2`,
    })},
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
     ${stepInsert(
       'p.id, $10, $5, $11, $12, $13, $14, $15, $17',
       'p WHERE NOT EXISTS (SELECT 1 FROM repeated)',
       'inserted',
     )},
     superseded AS (
       UPDATE orchestrator.callbacks cb SET status = 'cancelled', resolved_at = now()
         FROM p
        WHERE $11::text = 'awaiting_callback' AND cb.process_id = p.id AND cb.status = 'pending'),
     callback AS (
       INSERT INTO orchestrator.callbacks (process_id, step_index, token_hash, expires_at)
       SELECT p.id, $10, $18, $19 FROM p WHERE $11::text = 'awaiting_callback')
     SELECT p.event AS process,
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
      c.assignee ?? null,
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
    text: stepWrite({
      before: [
        `i AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::int[],
                            $7::text[], $8::jsonb[], $9::timestamptz[], $10::text[], $12::text[])
         AS i (id, token, step_index, name, step_status, next_index, process_status, state,
               started_at, created_by, step_group))`,
      ],
      update: {
        set: `step_index = i.next_index, attempt = 1, last_step = i.name,
              status = ${statusAfter('i.process_status')},
              failed_reason = NULL, traceback = NULL, last_modified_at = now(), retry_at = NULL,
              ${leaseAfter(statusAfter('i.process_status'), '$11', 'p')}, version = p.version + 1`,
        from: 'i',
        where: `p.id = i.id AND p.lease_token = i.token`,
      },
      step: `i.id, i.step_index, i.name, i.step_status, i.state, NULL, i.started_at,
              i.created_by, i.step_group`,
      stepFrom: 'i JOIN p ON p.id = i.id',
    }),
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

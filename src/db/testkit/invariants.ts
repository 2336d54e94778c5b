// Checks over the database that must hold whatever crashed or raced: the durability contract,
// stated as queries. Used by the test suite and the fault-injection suite.
import type { Queryable } from '../pool.ts';
import { CALLBACK_TIMED_OUT } from '../callbacks.ts';

export interface Violation {
  invariant: string;
  processId: string;
  detail: string;
}

/** What the checks need of the workflows (the engine's registry is one): their steps. */
interface WorkflowShape {
  name: string;
  /** `when`: a conditional step's conditions (none for a step that always runs). */
  steps: readonly { when: readonly unknown[] }[];
}
export interface KnownWorkflows {
  get(name: string): WorkflowShape | undefined;
  list(): readonly WorkflowShape[];
}

export interface InvariantOptions {
  /** To know each workflow's step count and conditional steps. */
  registry: KnownWorkflows;
  /**
   * Grace for what is due: a `running` process whose lease expired more than this long ago counts
   * as abandoned, a `waiting` one whose retry was due as long ago as lost, a pending callback past
   * its time by as long as not timed out. Default 60 s.
   */
  abandonedAfterSeconds?: number;
  /**
   * The runners' LEASE_SECONDS: a `running` process whose lease expired more than two leases ago
   * counts as abandoned (the sweeper takes an expired lease over within about one), or after
   * `abandonedAfterSeconds` when that is shorter. A runner cut off mid-transaction, whose session
   * still held the process's row, left one so.
   */
  leaseSeconds?: number;
  /** Check that every created/resumed/waiting process has exactly one live job (worker mode). Default false. */
  checkJobs?: boolean;
}

const CLEARED = `('success', 'skipped', 'complete')`;

/** Runs every check and returns what does not hold (empty = all good). */
export async function checkInvariants(db: Queryable, opts: InvariantOptions): Promise<Violation[]> {
  const violations: Violation[] = [];
  const add = (invariant: string, rows: { id: string; detail: string }[]) => {
    for (const r of rows) violations.push({ invariant, processId: r.id, detail: r.detail });
  };

  // 1. No step index cleared twice.
  add(
    'step committed once',
    (
      await db.query<{ id: string; detail: string }>(
        `SELECT process_id AS id, format('step %s cleared %s times', step_index, count(*)) AS detail
           FROM orchestrator.process_steps WHERE status IN ${CLEARED}
          GROUP BY process_id, step_index HAVING count(*) > 1`,
      )
    ).rows,
  );

  // 2. Cleared steps form the prefix 0..step_index-1, committed in order.
  add(
    'steps committed in order',
    (
      await db.query<{ id: string; detail: string }>(
        `WITH c AS (
           SELECT p.id, p.step_index,
                  coalesce(array_agg(s.step_index ORDER BY s.id) FILTER (WHERE s.id IS NOT NULL), '{}') AS cleared
             FROM orchestrator.processes p
             LEFT JOIN orchestrator.process_steps s ON s.process_id = p.id AND s.status IN ${CLEARED}
            GROUP BY p.id, p.step_index)
         SELECT id, format('cleared %s, next step %s', cleared, step_index) AS detail FROM c
          WHERE cleared <> ARRAY(SELECT generate_series(0, step_index - 1))`,
      )
    ).rows,
  );

  // 2b. An assignee only on a process suspended at an input step (cleared when it moves on).
  add(
    'assignee only while waiting for input',
    (
      await db.query<{ id: string; detail: string }>(
        `SELECT id, format('assignee %s while %s', assignee, status) AS detail
           FROM orchestrator.processes WHERE assignee IS NOT NULL AND status <> 'suspended'`,
      )
    ).rows,
  );

  // 3. The status fits the step rows and the definition.
  const abandonedAfter =
    opts.leaseSeconds !== undefined
      ? Math.min(2 * opts.leaseSeconds, opts.abandonedAfterSeconds ?? Infinity)
      : (opts.abandonedAfterSeconds ?? 60);
  const { rows } = await db.query<{
    id: string;
    workflow: string;
    status: string;
    stepIndex: number;
    leaseToken: string | null;
    hasRetryAt: boolean;
    lastStatus: string | null;
    lastIndex: number | null;
    abandoned: boolean;
    retryOverdue: boolean;
    pending: number;
    latestCallback: string | null;
    latestCallbackIndex: number | null;
    timeoutOverdue: boolean;
    childrenGoing: number;
  }>(
    `SELECT p.id, p.workflow_name AS workflow, p.status, p.step_index AS "stepIndex",
            p.lease_token AS "leaseToken", p.retry_at IS NOT NULL AS "hasRetryAt",
            last.status AS "lastStatus", last.step_index AS "lastIndex",
            (p.status = 'running' AND p.lease_expires_at < now() - make_interval(secs => $2)) AS abandoned,
            (p.status = 'waiting' AND p.retry_at < now() - make_interval(secs => $1)) AS "retryOverdue",
            cb.pending, cb.latest AS "latestCallback", cb.latest_index AS "latestCallbackIndex",
            cb.overdue AS "timeoutOverdue",
            (SELECT count(*)::int FROM orchestrator.processes c
              WHERE c.parent_id = p.id AND c.parent_step = p.step_index
                AND c.status NOT IN ('completed', 'aborted')) AS "childrenGoing"
       FROM orchestrator.processes p
       LEFT JOIN LATERAL (SELECT s.status, s.step_index FROM orchestrator.process_steps s
                           WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1) last ON true
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE c.status = 'pending')::int AS pending,
                (array_agg(c.status ORDER BY c.id DESC))[1] AS latest,
                (array_agg(c.step_index ORDER BY c.id DESC))[1] AS latest_index,
                coalesce(bool_or(c.status = 'pending'
                                 AND c.expires_at < now() - make_interval(secs => $1)), false) AS overdue
           FROM orchestrator.callbacks c WHERE c.process_id = p.id) cb`,
    [opts.abandonedAfterSeconds ?? 60, abandonedAfter],
  );
  for (const r of rows) {
    const bad = (detail: string) =>
      violations.push({ invariant: 'status fits steps', processId: r.id, detail });
    const steps = opts.registry.get(r.workflow)?.steps.length;
    const cleared =
      r.lastStatus === 'success' || r.lastStatus === 'skipped' || r.lastStatus === 'complete';
    switch (r.status) {
      case 'created':
        if (r.lastStatus !== null) bad(`created with step rows (last ${r.lastStatus})`);
        break;
      case 'completed':
        if (steps !== undefined && r.stepIndex !== steps)
          bad(`completed at step ${r.stepIndex} of ${steps}`);
        if (!cleared) bad(`completed but last row is ${r.lastStatus}`);
        break;
      case 'suspended':
        if (r.lastStatus !== 'suspend' || r.lastIndex !== r.stepIndex)
          bad(`suspended, last row ${r.lastStatus} at ${r.lastIndex}`);
        break;
      case 'waiting':
        if (r.lastStatus !== 'waiting' || r.lastIndex !== r.stepIndex)
          bad(`waiting, last row ${r.lastStatus} at ${r.lastIndex}`);
        // Waiting for a retry or a sleep (its time), or for the children it started (no time).
        if (!r.hasRetryAt && r.childrenGoing === 0)
          bad('waiting without a retry time and without children going');
        if (r.hasRetryAt && r.childrenGoing > 0) bad('waiting for a retry and for children');
        if (r.retryOverdue)
          violations.push({
            invariant: 'no lost retry',
            processId: r.id,
            detail: 'retry due long ago',
          });
        break;
      case 'awaiting_callback':
        if (r.lastStatus !== 'awaiting_callback' || r.lastIndex !== r.stepIndex)
          bad(`awaiting_callback, last row ${r.lastStatus} at ${r.lastIndex}`);
        if (
          r.pending !== 1 ||
          r.latestCallback !== 'pending' ||
          r.latestCallbackIndex !== r.stepIndex
        )
          bad(
            `awaiting_callback with ${r.pending} pending callbacks, the latest ${r.latestCallback} at ${r.latestCallbackIndex}`,
          );
        if (r.timeoutOverdue)
          violations.push({
            invariant: 'no lost callback timeout',
            processId: r.id,
            detail: 'pending callback past its time long ago',
          });
        break;
      case 'failed':
      case 'api_unavailable':
      case 'inconsistent_data':
        if (r.lastStatus !== 'failed' || r.lastIndex !== r.stepIndex)
          bad(`${r.status}, last row ${r.lastStatus} at ${r.lastIndex}`);
        break;
      case 'aborted':
        if (r.lastStatus !== 'abort') bad(`aborted, last row ${r.lastStatus}`);
        break;
      case 'running':
      case 'resumed':
        if (r.lastStatus === 'abort') bad(`${r.status} after an abort`);
        if (r.status === 'running' && r.leaseToken === null) bad('running without a lease');
        if (r.abandoned)
          violations.push({
            invariant: 'no abandoned lease',
            processId: r.id,
            detail: `lease expired more than ${abandonedAfter} s ago`,
          });
        break;
    }
    if (r.status !== 'running' && r.leaseToken !== null) bad(`${r.status} still holds a lease`);
    if (r.status !== 'waiting' && r.hasRetryAt) bad(`${r.status} with a retry time`);
    if (r.status !== 'awaiting_callback' && r.pending > 0)
      bad(`${r.status} with ${r.pending} pending callbacks`);
  }

  // 4. A callback answered (`done`) was applied exactly once: one answer row at its step (the
  // step cleared, or failed when the step refused the payload), written between its hand-out and
  // its resolution. (That a step is cleared at most once is check 1.)
  add(
    'callback applied once',
    (
      await db.query<{ id: string; detail: string }>(
        `SELECT cb.process_id AS id,
                format('callback %s done with %s answer rows at step %s', cb.id, count(s.id), cb.step_index) AS detail
           FROM orchestrator.callbacks cb
           LEFT JOIN orchestrator.process_steps s
             ON s.process_id = cb.process_id AND s.step_index = cb.step_index
            AND s.status IN ('success', 'failed') AND s.started_at >= cb.created_at
            AND s.started_at <= cb.resolved_at
          WHERE cb.status = 'done'
          GROUP BY cb.id, cb.process_id, cb.step_index HAVING count(s.id) <> 1`,
      )
    ).rows,
  );

  // 5. A callback that timed out (`expired`) failed its step (a `CallbackTimeout` row after it),
  // and unless the process moved on since (resumed: a later row, or on its way to one), the
  // process is `failed` with 'callback timed out'.
  add(
    'timed-out callback failed the process',
    (
      await db.query<{ id: string; detail: string }>(
        `SELECT cb.process_id AS id,
                format('callback %s expired; timeout row %s, process %s (%s)', cb.id,
                       coalesce(t.id::text, 'missing'), p.status, coalesce(p.failed_reason, '-')) AS detail
           FROM orchestrator.callbacks cb
           JOIN orchestrator.processes p ON p.id = cb.process_id
           LEFT JOIN LATERAL (
             SELECT s.id FROM orchestrator.process_steps s
              WHERE s.process_id = cb.process_id AND s.step_index = cb.step_index
                AND s.status = 'failed' AND s.error->>'name' = 'CallbackTimeout'
                AND s.started_at >= cb.created_at
              ORDER BY s.id LIMIT 1) t ON true
          WHERE cb.status = 'expired'
            AND (t.id IS NULL
                 OR (p.status NOT IN ('resumed', 'running')
                     AND NOT EXISTS (SELECT 1 FROM orchestrator.process_steps l
                                      WHERE l.process_id = p.id AND l.id > t.id)
                     AND (p.status <> 'failed'
                          OR p.failed_reason IS DISTINCT FROM $1)))`,
        [CALLBACK_TIMED_OUT],
      )
    ).rows,
  );

  // 6. Every created/resumed process has exactly one job waiting or running, and so has every
  // waiting one with a retry time (its retry, scheduled for retry_at); a process waiting for its
  // children has none (the end of its last child resumes it) (worker mode).
  if (opts.checkJobs) {
    add(
      'one job per runnable process',
      (
        await db.query<{ id: string; detail: string }>(
          `SELECT p.id, format('%s with %s live jobs', p.status, count(j.id)) AS detail
             FROM orchestrator.processes p
             LEFT JOIN pgboss.job j ON j.data->>'processId' = p.id::text
                                   AND j.state IN ('created', 'retry', 'active')
            WHERE p.status IN ('created', 'resumed') OR (p.status = 'waiting' AND p.retry_at IS NOT NULL)
            GROUP BY p.id, p.status HAVING count(j.id) <> 1`,
        )
      ).rows,
    );
  }

  // 7. Resource locks (`lockKeys`): a key is held only by a process that has not ended
  // (completed/aborted release it) and needs it; a process that has not ended holds all its keys
  // or, queued for them (lockMode queue), none; a queued process has not ended, and is not left
  // queued while every key it waits for is free (their release gives them to it).
  add('resource lock held rightly', await resourceLockViolations(db));

  // 8. Child processes (subProcesses): a child not ended has a parent waiting for it (status
  // waiting, no retry time, at the child's step): a parent running, resumed or further on, or
  // ended, has all the children of the step it went past ended. A child's parent exists, has
  // reached the child's step and started its children there (a waiting row at that step, or the
  // failed row it became when a child was aborted).
  // (That a waiting process with no retry time has children going at its step is check 3.)
  add(
    'children ended before their parent goes on',
    (
      await db.query<{ id: string; detail: string }>(
        `SELECT p.id, format('%s at step %s (retry %s) while child %s is %s', p.status, p.step_index,
                             coalesce(p.retry_at::text, 'none'), c.id, c.status) AS detail
           FROM orchestrator.processes c JOIN orchestrator.processes p ON p.id = c.parent_id
          WHERE c.status NOT IN ('completed', 'aborted')
            AND NOT (p.status = 'waiting' AND p.retry_at IS NULL AND p.step_index = c.parent_step)
         UNION ALL
         SELECT c.id, format('child of %s at step %s: %s', c.parent_id, coalesce(c.parent_step::text, 'none'),
                             CASE WHEN p.id IS NULL THEN 'no such parent'
                                  WHEN c.parent_step IS NULL THEN 'no step'
                                  WHEN p.step_index < c.parent_step THEN format('the parent is at step %s', p.step_index)
                                  ELSE 'the parent started no children there' END) AS detail
           FROM orchestrator.processes c LEFT JOIN orchestrator.processes p ON p.id = c.parent_id
          WHERE c.parent_id IS NOT NULL
            AND (p.id IS NULL OR c.parent_step IS NULL OR p.step_index < c.parent_step
                 OR NOT EXISTS (SELECT 1 FROM orchestrator.process_steps s
                                 WHERE s.process_id = p.id AND s.step_index = c.parent_step
                                   AND s.status IN ('waiting', 'failed')))`,
      )
    ).rows,
  );

  // 9. A `skipped` row is a repair of a failed step (a failed row at that step before it), unless
  // the step is conditional (skipped when its condition is false) or its workflow is unknown.
  const conditional: string[] = [];
  for (const def of opts.registry.list())
    def.steps.forEach((s, i) => {
      if (s.when.length > 0) conditional.push(`${def.name}:${i}`);
    });
  add(
    'skipped only after a failure',
    (
      await db.query<{ id: string; detail: string }>(
        `SELECT s.process_id AS id, format('step %s (%s) skipped without failing first', s.step_index, s.name) AS detail
           FROM orchestrator.process_steps s JOIN orchestrator.processes p ON p.id = s.process_id
          WHERE s.status = 'skipped' AND p.workflow_name = ANY($1::text[])
            AND NOT (p.workflow_name || ':' || s.step_index) = ANY($2::text[])
            AND NOT EXISTS (SELECT 1 FROM orchestrator.process_steps f
                             WHERE f.process_id = s.process_id AND f.step_index = s.step_index
                               AND f.status = 'failed' AND f.id < s.id)`,
        [opts.registry.list().map((d) => d.name), conditional],
      )
    ).rows,
  );
  return violations;
}

/** Check 7 alone (the fault-injection suite samples it while the load runs). */
export async function resourceLockViolations(
  db: Queryable,
): Promise<{ id: string; detail: string }[]> {
  const { rows } = await db.query<{ id: string; detail: string }>(
    `SELECT p.id, format('%s holds %s %s', p.status, l.key,
                         CASE WHEN p.status IN ('completed', 'aborted') THEN 'after it ended'
                              ELSE 'it does not need' END) AS detail
       FROM orchestrator.resource_locks l JOIN orchestrator.processes p ON p.id = l.process_id
      WHERE p.status IN ('completed', 'aborted') OR NOT (l.key = ANY(coalesce(p.lock_keys, '{}')))
     UNION ALL
     SELECT p.id, format('%s holds %s of its keys %s%s', p.status, h.n, p.lock_keys,
                         CASE WHEN q.n > 0 THEN format(' while queued for %s', q.n) ELSE '' END)
       FROM orchestrator.processes p
       CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM orchestrator.resource_locks l
                            WHERE l.process_id = p.id AND l.key = ANY(p.lock_keys)) h
       CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM orchestrator.resource_lock_waiters w
                            WHERE w.process_id = p.id) q
      WHERE cardinality(p.lock_keys) > 0 AND p.status NOT IN ('completed', 'aborted')
        AND CASE WHEN q.n > 0 THEN h.n > 0 ELSE h.n <> cardinality(p.lock_keys) END
     UNION ALL
     SELECT p.id, format('%s and queued for %s', p.status, w.keys) AS detail
       FROM (SELECT process_id, array_agg(key ORDER BY key) AS keys
               FROM orchestrator.resource_lock_waiters GROUP BY process_id) w
       JOIN orchestrator.processes p ON p.id = w.process_id
      WHERE p.status IN ('completed', 'aborted')
     UNION ALL
     SELECT p.id, format('queued for %s, all free', w.keys) AS detail
       FROM (SELECT process_id, array_agg(key ORDER BY key) AS keys
               FROM orchestrator.resource_lock_waiters GROUP BY process_id) w
       JOIN orchestrator.processes p ON p.id = w.process_id
      WHERE p.status NOT IN ('completed', 'aborted')
        AND NOT EXISTS (SELECT 1 FROM orchestrator.resource_locks l WHERE l.key = ANY(w.keys))`,
  );
  return rows;
}

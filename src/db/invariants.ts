// Checks over the database that must hold whatever crashed or raced: the durability contract,
// stated as queries. Used by the test suite and the fault-injection suite.
import type { Registry } from '../engine/registry.ts';
import type { Queryable } from './pool.ts';

export interface Violation {
  invariant: string;
  processId: string;
  detail: string;
}

export interface InvariantOptions {
  /** To know each workflow's step count. */
  registry: Registry;
  /** A `running` process whose lease expired more than this long ago counts as abandoned. Default 60 s. */
  abandonedAfterSeconds?: number;
  /** Check that every created/resumed process has exactly one queued job (worker mode). Default false. */
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

  // 3. The status fits the step rows and the definition.
  const { rows } = await db.query<{
    id: string;
    workflow: string;
    status: string;
    stepIndex: number;
    leaseToken: string | null;
    lastStatus: string | null;
    lastIndex: number | null;
    abandoned: boolean;
  }>(
    `SELECT p.id, p.workflow_name AS workflow, p.status, p.step_index AS "stepIndex",
            p.lease_token AS "leaseToken", last.status AS "lastStatus", last.step_index AS "lastIndex",
            (p.status = 'running' AND p.lease_expires_at < now() - make_interval(secs => $1)) AS abandoned
       FROM orchestrator.processes p
       LEFT JOIN LATERAL (SELECT s.status, s.step_index FROM orchestrator.process_steps s
                           WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1) last ON true`,
    [opts.abandonedAfterSeconds ?? 60],
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
            detail: 'lease expired long ago',
          });
        break;
    }
    if (r.status !== 'running' && r.leaseToken !== null) bad(`${r.status} still holds a lease`);
  }

  // 4. Every created/resumed process has exactly one job waiting or running (worker mode).
  if (opts.checkJobs) {
    add(
      'one job per runnable process',
      (
        await db.query<{ id: string; detail: string }>(
          `SELECT p.id, format('%s with %s live jobs', p.status, count(j.id)) AS detail
             FROM orchestrator.processes p
             LEFT JOIN pgboss.job j ON j.data->>'processId' = p.id::text
                                   AND j.state IN ('created', 'retry', 'active')
            WHERE p.status IN ('created', 'resumed')
            GROUP BY p.id, p.status HAVING count(j.id) <> 1`,
        )
      ).rows,
    );
  }
  return violations;
}

// What /metrics reads from the database at each scrape: a few index reads and small tables.
import { TERMINAL_STATUSES } from './model.ts';
import type { Queryable } from './pool.ts';

/** Processes that have not ended, by workflow, status and kind (through processes_status_idx). */
export async function unendedByWorkflow(
  db: Queryable,
): Promise<{ workflow: string; status: string; isTask: boolean; n: number }[]> {
  const { rows } = await db.query(
    `SELECT workflow_name AS workflow, status, is_task AS "isTask", count(*)::int AS n
       FROM orchestrator.processes WHERE status <> ALL($1::text[])
      GROUP BY workflow_name, status, is_task`,
    [TERMINAL_STATUSES],
  );
  return rows;
}

/** Jobs waiting and active per queue, with the age of the oldest waiting one. */
export async function queueDepths(
  db: Queryable,
): Promise<{ queue: string; queued: number; active: number; oldestSeconds: number | null }[]> {
  const { rows } = await db.query(
    `SELECT name AS queue,
            count(*) FILTER (WHERE state IN ('created', 'retry'))::int AS queued,
            count(*) FILTER (WHERE state = 'active')::int AS active,
            extract(epoch FROM now() - min(created_on) FILTER (WHERE state IN ('created', 'retry')
                                                                AND start_after <= now()))::float8
              AS "oldestSeconds"
       FROM pgboss.job WHERE state IN ('created', 'retry', 'active') AND name NOT LIKE '\\_\\_%'
      GROUP BY name`,
  );
  return rows;
}

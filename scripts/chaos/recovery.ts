import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

/**
 * Time to recover from a fault: until every process that was running when it struck has moved
 * (committed a step, or ended), or — when none was — until the next step commits anywhere.
 */
export function measureRecovery(pool: pg.Pool) {
  let before = new Map<string, number>();
  let t0 = 0;
  return {
    async snapshot() {
      const { rows } = await pool.query<{ id: string; t: Date }>(
        `SELECT id, last_modified_at AS t FROM orchestrator.processes WHERE status = 'running'`,
      );
      before = new Map(rows.map((r) => [r.id, r.t.getTime()]));
      t0 = Date.now();
    },
    /** Milliseconds until recovered, or undefined when it did not within `timeoutMs`. */
    async wait(timeoutMs: number): Promise<number | undefined> {
      const deadline = t0 + timeoutMs;
      let lastError: unknown;
      let stuck: unknown[] = [];
      while (Date.now() < deadline) {
        try {
          if (before.size === 0) {
            const { rows } = await pool.query(
              `SELECT 1 FROM orchestrator.process_steps WHERE completed_at > to_timestamp($1 / 1000.0) LIMIT 1`,
              [t0],
            );
            if (rows.length) return Date.now() - t0;
          } else {
            const { rows } = await pool.query(
              `SELECT p.id, p.workflow_name, p.step_index, p.lease_owner, p.lease_expires_at
                 FROM orchestrator.processes p
                 JOIN unnest($1::uuid[], $2::float8[]) AS b(id, t) ON b.id = p.id
                WHERE p.status = 'running' AND extract(epoch FROM p.last_modified_at) * 1000 <= b.t`,
              [[...before.keys()], [...before.values()]],
            );
            if (rows.length === 0) return Date.now() - t0;
            stuck = rows;
          }
        } catch (err) {
          // The database may be restarting.
          lastError = err;
        }
        await sleep(50);
      }
      console.error('not recovered:', { stuck: stuck.slice(0, 5), lastError });
      return undefined;
    },
  };
}

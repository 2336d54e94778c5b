// The test kit's own statements (src/testing.ts): what it waits on and what it fast-forwards.
import { queuedForLocks } from '../fragments.ts';
import type { ProcessStatus } from '../model.ts';
import type { Queryable } from '../pool.ts';

export interface TreeMember {
  id: string;
  status: ProcessStatus;
  retryAt: Date | null;
  /** Created, and queued for resource locks (not moving until it gets them). */
  queued: boolean;
}

/** The processes `ids` and all their descendants, where each stands. */
export async function processTree(db: Queryable, ids: readonly string[]): Promise<TreeMember[]> {
  const { rows } = await db.query<TreeMember>(
    `WITH RECURSIVE tree (id) AS (
       SELECT id FROM orchestrator.processes WHERE id = ANY($1::uuid[])
       UNION
       SELECT c.id FROM orchestrator.processes c JOIN tree ON c.parent_id = tree.id)
     SELECT p.id, p.status, p.retry_at AS "retryAt",
            ${queuedForLocks('p')} AS queued
       FROM orchestrator.processes p JOIN tree USING (id)`,
    [ids],
  );
  return rows;
}

/** Makes every waiting process's retry (or wake-up) due now; returns them with that time. */
export async function makeRetriesDue(db: Queryable): Promise<{ id: string; retryAt: Date }[]> {
  const { rows } = await db.query<{ id: string; retryAt: Date }>(
    `UPDATE orchestrator.processes SET retry_at = now()
      WHERE status = 'waiting' AND retry_at IS NOT NULL
      RETURNING id, retry_at AS "retryAt"`,
  );
  return rows;
}

// Resource locks: the keys a process holds from start to end, and the starts queued for them.
import type { Queryable } from './pool.ts';

/** A resource key and the process that holds it. */
export interface LockHolder {
  key: string;
  holder: string;
}

/**
 * Inside the transaction that inserted process `id`: takes every key of `keys`, or none. Returns
 * the keys held by others when not all could be taken (their holders, where already committed);
 * with `queue`, the process is then queued for all its keys instead (not claimable until it is
 * given them: see orchestrator.grant_locks).
 */
export async function acquireLocks(
  tx: Queryable,
  id: string,
  keys: readonly string[],
  queue: boolean,
): Promise<LockHolder[] | undefined> {
  const { rows } = await tx.query<{ got: number; held: LockHolder[] | null }>(
    `WITH ins AS (
       INSERT INTO orchestrator.resource_locks (key, process_id)
       SELECT k, $1 FROM unnest($2::text[]) k ON CONFLICT (key) DO NOTHING RETURNING key)
     SELECT (SELECT count(*)::int FROM ins) AS got,
            (SELECT json_agg(json_build_object('key', l.key, 'holder', l.process_id) ORDER BY l.key)
               FROM orchestrator.resource_locks l
              WHERE l.key = ANY($2::text[]) AND l.process_id <> $1) AS held`,
    [id, keys],
  );
  const row = rows[0]!;
  if (row.got === keys.length) return undefined;
  // All or none: the keys taken go back.
  await tx.query(`DELETE FROM orchestrator.resource_locks WHERE process_id = $1`, [id]);
  if (queue) {
    await tx.query(
      `INSERT INTO orchestrator.resource_lock_waiters (process_id, key)
       SELECT $1, k FROM unnest($2::text[]) k`,
      [id, keys],
    );
  }
  return row.held ?? [];
}

/** The locks a process holds and the keys it is queued for. */
export async function locksOf(
  db: Queryable,
  id: string,
): Promise<{ held: string[]; waitingFor: string[] }> {
  const { rows } = await db.query<{ held: string[]; waitingFor: string[] }>(
    `SELECT ARRAY(SELECT key FROM orchestrator.resource_locks WHERE process_id = $1 ORDER BY key) AS held,
            ARRAY(SELECT key FROM orchestrator.resource_lock_waiters WHERE process_id = $1 ORDER BY key)
              AS "waitingFor"`,
    [id],
  );
  return rows[0] ?? { held: [], waitingFor: [] };
}

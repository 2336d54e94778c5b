// Runtime queries on orchestrator.engine_settings (one row) and the engine status derived from it.
import type { EngineEventRow } from './events.ts';
import type { Queryable } from './pool.ts';

export type EngineStatusName = 'RUNNING' | 'PAUSING' | 'PAUSED';

export interface EngineStatus {
  /** Set: no process may start or resume. */
  globalLock: boolean;
  /** Processes whose runner holds a live lease right now, on any instance. */
  runningProcesses: number;
  /** RUNNING without the lock; with it, PAUSING while any lease is held, then PAUSED. */
  engineStatus: EngineStatusName;
}

export function engineStatusOf(globalLock: boolean, runningProcesses: number): EngineStatusName {
  if (!globalLock) return 'RUNNING';
  return runningProcesses > 0 ? 'PAUSING' : 'PAUSED';
}

export async function getGlobalLock(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ globalLock: boolean }>(
    `SELECT global_lock AS "globalLock" FROM orchestrator.engine_settings`,
  );
  return rows[0]?.globalLock ?? false;
}

export async function getEngineStatus(db: Queryable): Promise<EngineStatus> {
  const { rows } = await db.query<{ globalLock: boolean; runningProcesses: number }>(
    `SELECT s.global_lock AS "globalLock",
            (SELECT count(*) FROM orchestrator.processes
              WHERE status = 'running' AND lease_expires_at > now())::int AS "runningProcesses"
       FROM orchestrator.engine_settings s`,
  );
  const globalLock = rows[0]?.globalLock ?? false;
  const runningProcesses = rows[0]?.runningProcesses ?? 0;
  return {
    globalLock,
    runningProcesses,
    engineStatus: engineStatusOf(globalLock, runningProcesses),
  };
}

/**
 * Sets or clears the global lock, in a transaction `tx` of the caller's; returns the event to
 * publish when it changed.
 *
 * First it takes the processes table in SHARE ROW EXCLUSIVE mode (till `tx` ends), which waits
 * for every transaction writing processes right now. A claim or start whose statement read the
 * lock before it was set commits before this one does, so the status read after it counts that
 * lease (PAUSING, not a PAUSED that a late claim then contradicts); statements that take their
 * snapshot after this commit see the lock. Writers queue for the moment it is held: a pause costs
 * them one short wait, and claims no lock of their own on every start.
 */
export async function setGlobalLock(
  tx: Queryable,
  globalLock: boolean,
): Promise<EngineEventRow | undefined> {
  await tx.query(`LOCK TABLE orchestrator.processes IN SHARE ROW EXCLUSIVE MODE`);
  const { rowCount } = await tx.query(
    `UPDATE orchestrator.engine_settings SET global_lock = $1 WHERE global_lock IS DISTINCT FROM $1`,
    [globalLock],
  );
  return rowCount === 1 ? { type: 'engine', globalLock } : undefined;
}

/**
 * Records that the default schedule `name` was installed: true the first time, false ever after
 * (an operator who deleted a default schedule does not get it back at the next start).
 */
export async function markDefaultInstalled(tx: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO orchestrator.schedule_defaults (name) VALUES ($1) ON CONFLICT DO NOTHING`,
    [name],
  );
  return rowCount === 1;
}

/** Records the address the API answers at (see sql/012_public_url.sql). */
export async function recordPublicUrl(db: Queryable, url: string): Promise<void> {
  await db.query(`UPDATE orchestrator.engine_settings SET public_url = $1`, [url]);
}

/** The address an API recorded last, if any. */
export async function getPublicUrl(db: Queryable): Promise<string | null> {
  const { rows } = await db.query<{ url: string | null }>(
    `SELECT public_url AS url FROM orchestrator.engine_settings`,
  );
  return rows[0]?.url ?? null;
}

import pg from 'pg';
import type { Logger } from '../config/logger.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs a parameterised query: a pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>;

// Return int8 (counts) as numbers: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PoolOptions {
  connectionString: string;
  /** Maximum connections. Default 10. */
  max?: number;
  /** Name shown in pg_stat_activity.application_name. */
  applicationName?: string;
  logger: Logger;
}

/** A pool whose idle-client errors (database restart, terminated backend) are logged, not fatal. */
export function createPool(opts: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'orchestrator',
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', (err) => opts.logger.warn('database connection lost', { err }));
  return pool;
}

/** Runs `fn` in a transaction on one client; rolls back on any error. */
export async function withTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

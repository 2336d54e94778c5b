import pg from 'pg';
import type { Logger } from '../config/logger.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs a parameterised query: a pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>;
/** The narrow form handed to workflow code (a run predicate's `db`): text and values, rows back. */
export interface SqlRunner {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/** `q` as a SqlRunner: nothing of the client (release, events) reaches the code it is given to. */
export function sqlRunnerOf(q: Queryable): SqlRunner {
  return { query: (text, values) => q.query(text, values) };
}

// Return int8 (counts) as numbers: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PoolOptions {
  connectionString: string;
  /** Maximum connections. Default 10. */
  max?: number;
  /** Name shown in pg_stat_activity.application_name. */
  applicationName?: string;
  /**
   * Commits that do not wait for their WAL flush (`synchronous_commit = off`): for writes that a
   * later durable commit flushes anyway, or that are harmless to lose. Default false.
   */
  asynchronousCommit?: boolean;
  logger: Logger;
}

/** A pool whose idle-client errors (database restart, terminated backend) are logged, not fatal. */
export function createPool(opts: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'orchestrator',
    // The engine's hot statements are named (prepared once per connection). Under the default
    // plan_cache_mode, after five executions Postgres keeps a generic plan made with the table
    // sizes of that moment, until something invalidates it (an ANALYZE, DDL): prepared on a fresh
    // install or a truncated table, it scans the table sequentially for as long as the
    // connection lives, whatever it grows to (measured: one 3,000-process run made 25,000
    // sequential scans of processes reading 37 million rows; claims took 7 ms instead of 1.6 ms).
    // force_custom_plan plans every execution with its parameters and the table's current size,
    // and keeps only the parse. It changes no cost: on every server the planner makes the plan it
    // would make for the literal statement (and a JIT-capable server JITs nothing, which the old
    // `enable_seqscan=off` made it do for every statement: 10^10 added to any plan with a
    // sequential scan, even of a one-row table, put every plan above jit_above_cost). The price
    // is planning each execution. Measured against generic plans (plan_cache_mode=auto, which
    // has the trap above), noop processes through the REST API, medians of 3 runs on 2 cores:
    // Debian's postgresql-15 (JIT on): threadpool 422 vs 443/s (0.95x), worker mode 264 vs
    // 298/s (0.89x); embedded PostgreSQL 18: threadpool 423 vs 430/s, worker mode 244 vs 267/s.
    // (The old enable_seqscan=off: 473 and 279/s on the embedded server, about 1/s on Debian's.)
    // Unnamed statements (pg-boss's, the API's reads) are planned per execution anyway.
    options: [
      '-c plan_cache_mode=force_custom_plan',
      opts.asynchronousCommit ? '-c synchronous_commit=off' : '',
    ]
      .filter(Boolean)
      .join(' '),
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // Every client gets its own error listener: pg-pool listens only on idle clients, and a backend
  // terminated between two queries of a transaction would emit an unhandled 'error' and kill the
  // process. With it the next query fails instead, and the pool drops the broken client. It also
  // logs idle clients' losses, so the pool's own 'error' (which must be handled) stays quiet.
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.logger.warn('database connection lost', { err: err.message }));
  });
  pool.on('error', () => undefined);
  return pool;
}

/** Runs `fn` in a transaction on one client; rolls back on any error. */
export async function withTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(begin);
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

/** A transaction-scoped advisory lock on `key`: held until `tx` commits or rolls back. */
export async function lockForTransaction(tx: Queryable, key: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [key]);
}

/**
 * Runs `fn` inside a savepoint of the transaction on `tx`: an error rolls back what `fn` wrote
 * (and is thrown), leaving the transaction usable.
 */
export async function inSavepoint<T>(tx: Queryable, fn: () => Promise<T>): Promise<T> {
  await tx.query('SAVEPOINT orchestrator_savepoint');
  try {
    const result = await fn();
    await tx.query('RELEASE SAVEPOINT orchestrator_savepoint');
    return result;
  } catch (err) {
    await tx.query('ROLLBACK TO SAVEPOINT orchestrator_savepoint').catch(() => {});
    throw err;
  }
}

/** One round trip to the server: throws when the connection or the server is gone. */
export async function ping(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}

/**
 * Runs `fn` in a read-only REPEATABLE READ transaction: every query it makes sees one snapshot,
 * so rows read together (a process and its steps) never straddle a commit.
 */
export function withSnapshot<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01', // admin_shutdown (terminated backend, server shutting down)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
  '08000',
  '08001',
  '08003',
  '08006',
]);

/**
 * Runs `fn`, retrying it after connection failures with doubling delays (`firstDelayMs` up to
 * `maxDelayMs`) for up to `forMs`, and while `keepTrying()` holds. Other errors, and the last
 * connection failure, are thrown.
 */
export async function retryOnConnectionError<T>(
  fn: () => Promise<T>,
  opts: {
    forMs: number;
    firstDelayMs: number;
    maxDelayMs: number;
    onRetry?: (err: unknown) => void;
    keepTrying?: () => boolean;
  },
): Promise<T> {
  const deadline = Date.now() + opts.forMs;
  for (let delay = opts.firstDelayMs; ; delay = Math.min(delay * 2, opts.maxDelayMs)) {
    try {
      return await fn();
    } catch (err) {
      const again = opts.keepTrying?.() ?? true;
      if (!isConnectionError(err) || !again || Date.now() + delay > deadline) throw err;
      opts.onRetry?.(err);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** A failure of the connection (database restarting, backend terminated), not of the query. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i.test(
    e.message ?? '',
  );
}

import pg from 'pg';
import type { Config } from '../config/index.ts';
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
  /** How long a session may hold or wait for locks, and how a lost peer is noticed. Default: none. */
  limits?: SessionLimits;
  /**
   * How long a new connection refused with 53300 (too many clients) is tried again before the
   * caller gets the error, like a connection loss. Default 2000 ms.
   */
  connectRetryMs?: number;
  /** Close a connection idle this long. Default 30 s. */
  idleTimeoutMillis?: number;
  logger: Logger;
}

/**
 * The bounds every session of the engine carries, so that a client lost without a FIN (a worker
 * or an API cut off by the network, a frozen VM) cannot hold its locks for hours, and nothing
 * waits on it for longer than a bound. Milliseconds unless said; 0 or undefined: not set.
 */
export interface SessionLimits {
  /**
   * `idle_in_transaction_session_timeout`: the server ends a session left idle inside a
   * transaction this long (a client lost mid-transaction), which rolls it back and frees its locks.
   * No transaction of the engine waits this long between two statements.
   */
  idleInTransactionMs?: number;
  /**
   * `lock_timeout`: a statement waiting this long for a lock another session holds fails (55P03)
   * instead of holding its connection until that session goes away: the API answers 503
   * `database_locked`, a runner's commit is tried again.
   */
  lockTimeoutMs?: number;
  /** `statement_timeout`: for the API's reads, which must never hold a connection for long. */
  statementTimeoutMs?: number;
  /**
   * TCP keepalive, both ways, after this many idle seconds: the client's socket (pg's `keepAlive`,
   * Node probing every second 10 times) and the server's (`tcp_keepalives_idle`, probing every
   * third of it 3 times), so each side drops a peer that went away without a FIN after about
   * twice this (the server's side frees the connection slot of a lost client).
   */
  keepAliveSeconds?: number;
}

/** The engine's session bounds from the configuration (see the DB_* settings). */
export function sessionLimitsOf(
  config: Pick<
    Config,
    | 'LEASE_SECONDS'
    | 'DB_LOCK_TIMEOUT_MS'
    | 'DB_IDLE_IN_TRANSACTION_TIMEOUT_MS'
    | 'DB_KEEPALIVE_SECONDS'
  >,
): SessionLimits {
  return {
    lockTimeoutMs: config.DB_LOCK_TIMEOUT_MS,
    // About a lease (at least 10 s, as no transaction of the engine is close to it anyway): a
    // process whose runner was cut off mid-commit is free for the sweeper within about two leases.
    idleInTransactionMs:
      config.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS ?? Math.max(config.LEASE_SECONDS, 10) * 1000,
    keepAliveSeconds:
      config.DB_KEEPALIVE_SECONDS ?? Math.max(1, Math.round(config.LEASE_SECONDS / 2)),
  };
}

/** The `-c` settings of `limits` for the connection's `options`. */
function sessionSettings(limits: SessionLimits): string[] {
  const out: string[] = [];
  const ms = (name: string, v: number | undefined) => {
    if (v) out.push(`-c ${name}=${Math.round(v)}`);
  };
  ms('idle_in_transaction_session_timeout', limits.idleInTransactionMs);
  ms('lock_timeout', limits.lockTimeoutMs);
  ms('statement_timeout', limits.statementTimeoutMs);
  const idle = limits.keepAliveSeconds;
  if (idle) {
    // Ignored by the server on a Unix socket, where a lost peer is seen at once.
    out.push(`-c tcp_keepalives_idle=${idle}`);
    out.push(`-c tcp_keepalives_interval=${Math.max(1, Math.ceil(idle / 3))}`);
    out.push('-c tcp_keepalives_count=3');
  }
  return out;
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
      ...sessionSettings(opts.limits ?? {}),
    ]
      .filter(Boolean)
      .join(' '),
    ...(opts.limits?.keepAliveSeconds
      ? { keepAlive: true, keepAliveInitialDelayMillis: opts.limits.keepAliveSeconds * 1000 }
      : {}),
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: opts.idleTimeoutMillis ?? 30_000,
  });
  retryRefusedConnects(pool, opts.connectRetryMs ?? 2_000);
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

/**
 * A new connection the server refused for want of slots (53300, too many clients) is tried again
 * with doubling delays for up to `forMs`, as a connection loss would be: a burst of clients
 * elsewhere costs a caller a short wait, not an error. `pool.query` goes through `connect` too.
 */
function retryRefusedConnects(pool: Pool, forMs: number): void {
  if (forMs <= 0) return;
  type Callback = (err: Error | undefined, client?: PoolClient, release?: () => void) => void;
  const connect = pool.connect.bind(pool) as (cb: Callback) => void;
  const withRetry = (cb: Callback) => {
    const deadline = Date.now() + forMs;
    const attempt = (delay: number) =>
      connect((err, client, release) => {
        if (err && isTooManyClients(err) && Date.now() + delay < deadline && !pool.ending) {
          setTimeout(() => attempt(Math.min(delay * 2, 500)), delay);
          return;
        }
        cb(err, client, release);
      });
    attempt(50);
  };
  (pool as { connect: unknown }).connect = (cb?: Callback) => {
    if (cb) {
      withRetry(cb);
      return undefined;
    }
    return new Promise<PoolClient>((resolve, reject) =>
      withRetry((err, client) => (err ? reject(err) : resolve(client!))),
    );
  };
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
  // too_many_connections: the server refuses new clients for now (max_connections reached); a
  // caller waits and tries again as after a loss. The API answers it 503 `database_busy`.
  '53300',
]);

/** The server has no connection slot to spare (53300). */
export const isTooManyClients = (err: unknown) => sqlState(err) === '53300';
/** The server cannot write: its disk is full (53100, disk_full). */
export const isDiskFull = (err: unknown) => sqlState(err) === '53100';
/** A statement gave up waiting for a lock another session holds (55P03, `lock_timeout`). */
export const isLockTimeout = (err: unknown) => sqlState(err) === '55P03';
/** A statement cancelled by its `statement_timeout` (57014, query_canceled). */
export const isStatementTimeout = (err: unknown) => sqlState(err) === '57014';

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

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

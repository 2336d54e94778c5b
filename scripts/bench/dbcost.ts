// Item 8, database cost per process: what one throughput run cost the database, read from
// Postgres's cumulative statistics before and after the run. Commits (`xact_commit`) and rows
// written (`tup_inserted + tup_updated + tup_deleted`) from `pg_stat_database` for the bench
// database; WAL bytes from `pg_stat_wal`; WAL flushes from `pg_stat_io` (`object = 'wal'`,
// PostgreSQL 18, where `pg_stat_wal` lost `wal_write`/`wal_sync`) or `pg_stat_wal.wal_sync`
// (PostgreSQL 14–17).
//
// Backends report their statistics with a delay: a backend flushes its pending counters when it
// goes idle, at most once a second, and a backend that went idle less than a second after its
// last flush keeps them until a timer 10 s later or its next transaction (PGSTAT_MIN_INTERVAL,
// PGSTAT_IDLE_INTERVAL in pgstat.c). A LISTENing backend reads each batch of notifications in a
// transaction of its own while idle (it counts in `xact_commit`) and reports those only after its
// next statement. `pg_stat_force_next_flush()` only acts on the backend that calls it. So the
// probe flushes its own counters that way, and before reading the "after" figures waits until
// every other backend of the database has provably reported what it did in the run (see
// `settle`). The probe's own transactions (the reset before the run, the polls for completion,
// the reads) are counted one by one and reported apart, so they can be subtracted.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export interface CostCounters {
  commits: number;
  rows: number;
  walBytes: number;
  /** Undefined when this server exposes no WAL flush count. */
  walFlushes?: number;
}

export interface RunCost extends CostCounters {
  /** Of `commits`: the probe's own transactions (polls, reads) inside the window. */
  probeCommits: number;
  /** How long the probe waited for the other backends' statistics, in ms. */
  settleMs: number;
}

/** The idle backend's flush timer (PGSTAT_IDLE_INTERVAL, 10 s) plus a margin. */
const IDLE_FLUSH_MS = 10_500;
/** A backend flushes at its next idle transition once a second has passed (PGSTAT_MIN_INTERVAL). */
const MIN_INTERVAL_MS = 1_000;
/** The orchestrator's LISTEN connections check themselves with a query every 15 s. */
const SETTLE_MAX_MS = 18_000;
/** Listening backends by name (src/live/listener.ts), besides those whose last statement is LISTEN. */
const LISTENER_NAMES = /^orchestrator-live$/;

/**
 * A client of the bench database that takes the snapshots and counts every transaction it runs
 * itself. Run the bench's own queries of a measured run (reset, polling) through `client` so they
 * are counted too.
 */
export class CostProbe {
  readonly client: pg.Client;
  /** Transactions this client ran (each `query` outside an explicit transaction is one). */
  transactions = 0;
  private forceFlush = false;
  private flushSource: 'io' | 'wal' | undefined;

  private constructor(client: pg.Client) {
    this.client = client;
    const query = client.query.bind(client) as (...a: unknown[]) => unknown;
    // Every statement this client sends runs in its own transaction: count them all.
    (client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
      this.transactions++;
      return query(...a);
    };
  }

  static async open(url: string): Promise<CostProbe> {
    const client = new pg.Client({ connectionString: url, application_name: 'bench-cost-probe' });
    await client.connect();
    try {
      const probe = new CostProbe(client);
      // to_regclass, not a ::regclass literal: before PostgreSQL 16 there is no pg_stat_io, and
      // the literal fails the whole statement.
      const { rows } = await client.query<{ force: boolean; io: boolean; sync: boolean }>(
        `SELECT to_regproc('pg_catalog.pg_stat_force_next_flush') IS NOT NULL AS force,
                EXISTS (SELECT 1 FROM pg_attribute
                         WHERE attrelid = to_regclass('pg_catalog.pg_stat_io') AND attname = 'object') AS io,
                EXISTS (SELECT 1 FROM pg_attribute
                         WHERE attrelid = to_regclass('pg_catalog.pg_stat_wal') AND attname = 'wal_sync') AS sync`,
      );
      const f = rows[0]!;
      probe.forceFlush = f.force;
      if (f.io) {
        const io = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_io WHERE object = 'wal'`,
        );
        if ((io.rows[0]?.n ?? 0) > 0) probe.flushSource = 'io';
      }
      if (!probe.flushSource && f.sync) probe.flushSource = 'wal';
      return probe;
    } catch (err) {
      await client.end();
      throw err;
    }
  }

  /** Where WAL flushes are read from, for the report. */
  get walFlushSource(): string {
    return this.flushSource === 'io'
      ? "pg_stat_io (object 'wal') fsyncs"
      : this.flushSource === 'wal'
        ? 'pg_stat_wal.wal_sync'
        : 'not available';
  }

  /** The counters now, with this client's own pending counters flushed first. */
  async read(): Promise<CostCounters & { ownTransactions: number }> {
    // The flush happens when this backend goes idle after the call, before the next query.
    if (this.forceFlush) await this.client.query('SELECT pg_stat_force_next_flush()');
    else {
      // Before PostgreSQL 15: a transaction a second after the last flush reports.
      await sleep(MIN_INTERVAL_MS + 100);
      await this.client.query('SELECT 1');
    }
    // Own transactions so far, as they are in the counters read below (this read not included).
    const ownTransactions = this.transactions;
    const flushes =
      this.flushSource === 'io'
        ? `(SELECT sum(fsyncs) FROM pg_stat_io WHERE object = 'wal')`
        : this.flushSource === 'wal'
          ? '(SELECT wal_sync FROM pg_stat_wal)'
          : 'NULL';
    const { rows } = await this.client.query<{
      commits: string;
      rows: string;
      wal: string;
      flushes: string | null;
    }>(
      `SELECT d.xact_commit AS commits, d.tup_inserted + d.tup_updated + d.tup_deleted AS rows,
              (SELECT wal_bytes FROM pg_stat_wal) AS wal, ${flushes} AS flushes
         FROM pg_stat_database d WHERE d.datname = current_database()`,
    );
    const r = rows[0]!;
    return {
      commits: Number(r.commits),
      rows: Number(r.rows),
      walBytes: Number(r.wal),
      ...(r.flushes === null ? {} : { walFlushes: Number(r.flushes) }),
      ownTransactions,
    };
  }

  /**
   * Waits until every other backend of this database has flushed the counters of what it did
   * before `windowEnd` (epoch ms, this machine's clock). A backend has when it is gone (it flushes
   * on exit), when it went idle a second or more after `windowEnd` (that flush, or an earlier one
   * after `windowEnd`, covered the window), and, unless it listens for notifications, when it did
   * nothing since `windowStart` or has been idle for longer than the idle-flush timer. A listening
   * backend reads every notification in a transaction of its own while idle, and those are only
   * reported after its next statement: it must have run one after `windowEnd`. Listeners are told
   * by their last statement (`LISTEN …`) or their name (the orchestrator's `orchestrator-live`).
   * Gives up after `maxMs` (logged); returns the time waited.
   */
  async settle(windowStart: number, windowEnd: number, maxMs = SETTLE_MAX_MS): Promise<number> {
    const started = Date.now();
    for (;;) {
      const { rows } = await this.client.query<{ app: string; query: string }>(
        `SELECT application_name AS app, left(query, 40) AS query
           FROM pg_stat_activity
          WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND pid <> pg_backend_pid()
            AND state_change IS NOT NULL
            AND NOT (state = 'idle' AND state_change >= to_timestamp($2 / 1000.0))
            AND (query ILIKE 'LISTEN %' OR application_name ~ $4
                 OR (state_change >= to_timestamp($1 / 1000.0)
                     AND NOT (state = 'idle'
                              AND state_change < now() - make_interval(secs => $3 / 1000.0))))`,
        [windowStart, windowEnd + MIN_INTERVAL_MS, IDLE_FLUSH_MS, LISTENER_NAMES.source],
      );
      if (rows.length === 0) break;
      if (Date.now() - started > maxMs) {
        process.stderr.write(
          `[bench] cost: gave up waiting after ${maxMs} ms for the statistics of ` +
            `${rows.map((r) => `${r.app} (${r.query})`).join(', ')}\n`,
        );
        break;
      }
      await sleep(200);
    }
    // A backend leaves pg_stat_activity just before its exit flush.
    await sleep(100);
    return Date.now() - started;
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

/** `after − before` as a run's cost; `probeCommits` are the probe's transactions between them. */
export function costBetween(
  before: CostCounters & { ownTransactions: number },
  after: CostCounters & { ownTransactions: number },
  settleMs: number,
): RunCost {
  return {
    commits: after.commits - before.commits,
    rows: after.rows - before.rows,
    walBytes: after.walBytes - before.walBytes,
    ...(after.walFlushes === undefined || before.walFlushes === undefined
      ? {}
      : { walFlushes: after.walFlushes - before.walFlushes }),
    probeCommits: after.ownTransactions - before.ownTransactions,
    settleMs,
  };
}

// `node scripts/bench/pgboss-fanout.ts [children] [rounds]`: what pg-boss costs per child of a
// fan-out, and the alternatives that keep pg-boss as the queue, on an embedded Postgres. Only the
// queue's part: no process rows, no steps. For each design, `children` wake-ups are inserted in
// one statement (as a parent's commit does) and drained by 2 consumers, each on a connection of
// its own with pg-boss's statements prepared (src/db/jobs.ts `inTransaction`), each fetching up to
// 16 at a time (a worker's free slots):
//   today      a job per child; fetch, then complete in a second transaction (src/executors/worker.ts)
//   at-fetch   a job per child; fetch and complete in one transaction (completing at claim)
//   batch-100  a job per 100 children; fetch one, complete it
// Per child: Postgres CPU (the postmaster and its backends, /proc), commits and rows
// (pg_stat_database), WAL bytes (pg_stat_wal); children/s from the insert to the last completion.
// Designs run in turn, `rounds` times (default 3), so that drift on a shared machine favours none.
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { inTransaction } from '../../src/db/jobs.ts';
import { postgresCpuSeconds, postmasterPid } from './fanout.ts';
import { summarize } from './stats.ts';
import { openBenchDatabase } from './system.ts';

const children = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const SCHEMA = 'bench_fanout_boss';
const QUEUE = 'bench_children';
const CONSUMERS = 2;
const SLOTS = 16;

type Design = 'today' | 'at-fetch' | 'batch-100';
const DESIGNS: Design[] = ['today', 'at-fetch', 'batch-100'];

interface Result {
  perSecond: number;
  cpuMs: number;
  commits: number;
  rows: number;
  walBytes: number;
}

const db = await openBenchDatabase({ pgStats: false });
const boss = new PgBoss({
  connectionString: db.url,
  schema: SCHEMA,
  supervise: false,
  schedule: false,
});
boss.on('error', () => {});
try {
  await boss.start();
  await boss.createQueue(QUEUE, { expireInSeconds: 3_600 });
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const postmaster = await postmasterPid(admin);
  const counters = async () => {
    await admin.query('SELECT pg_stat_force_next_flush()');
    const { rows } = await admin.query<{ commits: string; rows: string; wal: string }>(
      `SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows,
              (SELECT wal_bytes FROM pg_stat_wal) AS wal
         FROM pg_stat_database WHERE datname = current_database()`,
    );
    const r = rows[0]!;
    return { commits: Number(r.commits), rows: Number(r.rows), wal: Number(r.wal) };
  };

  async function runDesign(design: Design): Promise<Result> {
    await admin.query(`DELETE FROM ${SCHEMA}.job WHERE name = $1`, [QUEUE]);
    await admin.query(`VACUUM ANALYZE ${SCHEMA}.job`);
    const per = design === 'batch-100' ? 100 : 1;
    const jobs = Math.ceil(children / per);
    const consumers = await Promise.all(
      Array.from({ length: CONSUMERS }, async () => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        return c;
      }),
    );
    const before = await counters();
    const cpuBefore = postgresCpuSeconds(postmaster);
    const started = performance.now();
    const ids = Array.from(
      { length: per },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    await boss.insert(
      QUEUE,
      Array.from({ length: jobs }, () => ({
        data: per === 1 ? { processId: ids[0] } : { processIds: ids },
      })),
      { db: inTransaction(admin) },
    );
    let done = 0;
    await Promise.all(
      consumers.map(async (c) => {
        const q = inTransaction(c);
        for (;;) {
          const batch = per === 1 ? SLOTS : 1;
          if (design === 'at-fetch') await c.query('BEGIN');
          const got = await boss.fetch(QUEUE, { batchSize: batch, db: q });
          if (got.length === 0) {
            if (design === 'at-fetch') await c.query('COMMIT');
            if (done >= jobs) return;
            continue;
          }
          await boss.complete(
            QUEUE,
            got.map((j) => j.id),
            null,
            { db: q },
          );
          if (design === 'at-fetch') await c.query('COMMIT');
          done += got.length;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    // Backends report their statistics when they exit.
    await Promise.all(consumers.map((c) => c.end()));
    await new Promise((r) => setTimeout(r, 300));
    const cpu = postgresCpuSeconds(postmaster) - cpuBefore;
    const after = await counters();
    return {
      perSecond: children / seconds,
      cpuMs: (cpu * 1000) / children,
      commits: (after.commits - before.commits - 1) / children,
      rows: (after.rows - before.rows) / children,
      walBytes: (after.wal - before.wal) / children,
    };
  }

  const results = new Map<Design, Result[]>(DESIGNS.map((d) => [d, []]));
  for (let round = 0; round < rounds; round++)
    for (const d of DESIGNS) results.get(d)!.push(await runDesign(d));
  process.stdout.write(
    `${children} children, ${CONSUMERS} consumers, ${rounds} rounds (median, min–max)\n` +
      `design      children/s           Postgres CPU ms/child  commits/child  rows/child  WAL bytes/child\n`,
  );
  const fmt = (rs: Result[], k: keyof Result, digits: number) => {
    const s = summarize(rs.map((r) => r[k]));
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  for (const [d, rs] of results)
    process.stdout.write(
      `${d.padEnd(11)} ${fmt(rs, 'perSecond', 0).padEnd(20)} ${fmt(rs, 'cpuMs', 3).padEnd(22)} ` +
        `${fmt(rs, 'commits', 3).padEnd(14)} ${fmt(rs, 'rows', 2).padEnd(11)} ${fmt(rs, 'walBytes', 0)}\n`,
    );
  await admin.end();
} finally {
  await boss.stop({ graceful: false }).catch(() => undefined);
  await db.close();
}

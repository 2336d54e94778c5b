// `node scripts/bench/fanout-profile.ts [children] [--cpu-prof]`: one fan-out run (item 9) in worker
// mode with 2 workers on an embedded Postgres with pg_stat_statements: children/s, CPU per child
// by component, and the statements that took the most time in Postgres. With `--cpu-prof`, the
// workers run under the V8 profiler (profiles in .data/bench-profile/).
import path from 'node:path';
import pg from 'pg';
import { measureFanout, postmasterPid } from './fanout.ts';
import { openBenchDatabase, root, startApi, startWorker } from './system.ts';

const children = Number(process.argv[2] ?? 3_000);
const cpuProf = process.argv.includes('--cpu-prof');
const dir = path.join(root, '.data', 'bench-profile');
const db = await openBenchDatabase({ pgStats: true });
try {
  // Statements inside functions and triggers too (the child_ended trigger's).
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`ALTER DATABASE orchestrator_bench SET pg_stat_statements.track = 'all'`);
  await admin.end();
  const api = await startApi(db, 'worker');
  const env: Record<string, string> = cpuProf
    ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` }
    : {};
  const workers = [await startWorker(db, env), await startWorker(db, env)];
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const watch = {
    api: api.process.child.pid,
    workers: workers.map((w) => w.child.pid),
    postmaster: await postmasterPid(c),
  };
  await measureFanout(db, api.url, { children: 200, watch });
  await c.query('SELECT pg_stat_statements_reset()');
  const r = await measureFanout(db, api.url, { children, watch });
  const per = (s: number) => ((s * 1000) / children).toFixed(2);
  process.stdout.write(
    `${r.childrenPerSecond.toFixed(0)} children/s, ${r.stepsPerSecond.toFixed(0)} steps/s, ` +
      `${r.seconds.toFixed(1)} s to the last child, ${r.parentSeconds.toFixed(1)} s to the task's end\n` +
      `CPU ms per child: Postgres ${per(r.cpu.postgres)}, workers ${per(r.cpu.workers)}, ` +
      `API ${per(r.cpu.api)}, bench ${per(r.cpu.bench)}\n`,
  );
  const { rows } = await c.query<{ calls: number; total: number; mean: number; query: string }>(
    `SELECT calls, round(total_exec_time)::int AS total, round(mean_exec_time::numeric, 3)::float AS mean,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 150) AS query
       FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20`,
  );
  for (const s of rows)
    process.stdout.write(
      `${String(s.total).padStart(7)} ms ${String(s.calls).padStart(7)} calls ${s.mean} ms  ${s.query}\n`,
    );
  await c.end();
  await Promise.all(workers.map((w) => w.stop()));
  await api.process.stop();
  if (cpuProf) process.stdout.write(`profiles in ${dir}\n`);
} finally {
  await db.close();
}

// `node scripts/bench/latency-stages.ts [processes] [--executor worker|threadpool] [--seed N]`: where a
// start's latency goes on an idle system. Starts `processes` noop processes one after another
// (item 4's client, embedded Postgres, one worker in worker mode) with triggers on the bench
// database that note, in a table of their own, when each stage's statement ran
// (`clock_timestamp()`, before its commit): the process row inserted, its job inserted, fetched
// and completed (worker mode), the claim, each step row. Prints the client's p50/p99 and, per
// stage, the p50 time since the insert; then the statements each process ran, from
// pg_stat_statements. `--seed N`: N ended processes in the tables first (a deployment that has
// been running).
import { parseArgs } from 'node:util';
import pg from 'pg';
import { seedProcesses } from '../../src/db/testkit/seed.ts';
import { measureLatency } from './latency.ts';
import { openBenchDatabase, startApi, startWorker } from './system.ts';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    executor: { type: 'string', default: 'worker' },
    seed: { type: 'string', default: '0' },
  },
});
const processes = Number(positionals[0] ?? 200);
const executor = args.executor === 'threadpool' ? 'threadpool' : 'worker';

/** A trigger on `table` that notes `what` (an SQL expression over NEW) for process `id`. */
const probe = (name: string, table: string, when: string, id: string, what: string) => [
  `CREATE FUNCTION public.${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO public.stages (id, what) VALUES (${id}, ${what}); RETURN NULL; END $$`,
  `CREATE TRIGGER ${name} AFTER ${when} ON ${table} FOR EACH ROW EXECUTE FUNCTION public.${name}()`,
];

// Output cut short (`| head`) must not skip the `finally` that stops the API and the worker.
process.stdout.on('error', () => undefined);
const db = await openBenchDatabase({ pgStats: true });
const started: { stop(): Promise<unknown> }[] = [];
try {
  const seed = Number(args.seed);
  if (seed > 0) {
    const s = new pg.Client({ connectionString: db.url });
    await s.connect();
    await seedProcesses(s, seed);
    await s.query('VACUUM ANALYZE orchestrator.processes, orchestrator.process_steps');
    await s.end();
  }
  const api = await startApi(db, executor);
  started.push(api.process);
  if (executor === 'worker') started.push(await startWorker(db));
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const statements = [
    `CREATE TABLE public.stages (id uuid, what text, at timestamptz DEFAULT clock_timestamp())`,
    ...probe('stage_insert', 'orchestrator.processes', 'INSERT', 'NEW.id', `'process inserted'`),
    ...probe(
      'stage_claim',
      'orchestrator.processes',
      'UPDATE',
      `CASE WHEN OLD.status = 'created' AND NEW.status = 'running' THEN NEW.id END`,
      `'claimed'`,
    ),
    ...probe(
      'stage_step',
      'orchestrator.process_steps',
      'INSERT',
      'NEW.process_id',
      `'step ' || NEW.step_index || ' committed'`,
    ),
    ...(executor === 'worker'
      ? probe(
          'stage_job',
          'pgboss.job',
          'INSERT OR UPDATE',
          `(NEW.data->>'processId')::uuid`,
          `'job ' || NEW.state`,
        )
      : []),
  ];
  for (const s of statements) await c.query(s);
  await c.query('SELECT pg_stat_statements_reset()');
  const r = await measureLatency(db.url, api.url, { count: processes, runs: 1 });
  const ms = (x: number | undefined) => (x ?? NaN).toFixed(1);
  process.stdout.write(
    `${executor} mode, ${processes} noop processes one after another (after 20 to warm up)` +
      `${seed > 0 ? `, ${seed} ended processes in the tables` : ''}\n` +
      `client: POST → first step p50 ${ms(r.firstStep[0]?.p50)} ms, p99 ${ms(r.firstStep[0]?.p99)} ms; ` +
      `→ completed p50 ${ms(r.completed[0]?.p50)} ms, p99 ${ms(r.completed[0]?.p99)} ms\n` +
      `stage (its statement ran), p50 ms after the process row's insert:\n`,
  );
  const { rows: stages } = await c.query<{ what: string; p50: number }>(
    `WITH t AS (SELECT what, at - min(at) OVER (PARTITION BY id) AS since
                  FROM public.stages WHERE id IS NOT NULL)
     SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM since) * 1000) AS p50
       FROM t GROUP BY what ORDER BY 2`,
  );
  for (const s of stages) process.stdout.write(`  ${s.p50.toFixed(2).padStart(7)}  ${s.what}\n`);
  // Every process of the run (the warm-up's too) ran these; the probes' own inserts are left out.
  const { rows: calls } = await c.query<{ calls: number; mean: number; query: string }>(
    `SELECT calls, mean_exec_time AS mean, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
       FROM pg_stat_statements
      WHERE calls >= $1 AND query NOT LIKE '%public.stages%'
      ORDER BY calls DESC, total_exec_time DESC`,
    [processes],
  );
  process.stdout.write(`statements run at least once per process (${processes + 20} processes):\n`);
  for (const s of calls)
    process.stdout.write(
      `  ${String(s.calls).padStart(6)} calls ${s.mean.toFixed(3).padStart(7)} ms  ${s.query}\n`,
    );
  await c.end();
} finally {
  await Promise.all(started.map((p) => p.stop()));
  await db.close();
}

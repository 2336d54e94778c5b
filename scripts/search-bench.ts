// The process list's search on a million processes: seeds them (src/db/testkit/seed.ts, one
// INSERT … SELECT per 100,000), then times listProcesses — the statements GET /api/processes runs,
// a page of 25 and its total — for each kind of search, and prints p50/p95 per kind.
//
//   node scripts/search-bench.ts [--processes 1000000] [--runs 40]
//
// DATABASE_URL: a server to clone the migrated template on (dropped at the end); without it an
// embedded Postgres in a temporary folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/config/logger.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { createPool } from '../src/db/pool.ts';
import { listProcesses, type ListQuery } from '../src/db/process-list.ts';
import { cloneDatabase } from '../src/db/templates.ts';
import { seedProcesses } from '../src/db/testkit/seed.ts';
import { freePort } from './support/ports.ts';

const { values: args } = parseArgs({
  options: {
    processes: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '40' },
  },
});
const total = Number(args.processes);
const runs = Number(args.runs);

let stop = async () => {};
let adminUrl = process.env.DATABASE_URL;
let dir: string | undefined;
if (!adminUrl) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'search-bench-'));
  fs.chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({
    dataDir: dir,
    port: await freePort(),
    logger: silentLogger,
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'max_wal_size=4GB'],
  });
  adminUrl = pg.connectionString;
  stop = pg.stop;
}
const db = await cloneDatabase(adminUrl, 'search_bench');
const pool = createPool({ connectionString: db.url, logger: silentLogger, max: 4 });
try {
  const t0 = performance.now();
  const chunk = 100_000;
  for (let from = 1; from <= total; from += chunk) {
    await seedProcesses(pool, Math.min(chunk, total - from + 1), { from });
    process.stdout.write(`\rseeded ${Math.min(from + chunk - 1, total)}`);
  }
  await pool.query('VACUUM ANALYZE orchestrator.processes');
  await pool.query('VACUUM ANALYZE orchestrator.process_steps');
  console.log(`\nseeded ${total} processes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const { rows } = await pool.query<{ id: string }>(
    `SELECT id FROM orchestrator.processes TABLESAMPLE SYSTEM (1) LIMIT 200`,
  );
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const device = () => `sw-${String(1 + Math.floor(Math.random() * total)).padStart(7, '0')}`;
  const search = (text: () => string) => () => ({ search: text() });
  const kinds: Record<string, () => Partial<ListQuery>> = {
    'id prefix (8 hex)': search(() => pick(rows).id.slice(0, 8)),
    'id prefix (4 hex)': search(() => pick(rows).id.slice(0, 4)),
    'state value (device name)': search(device),
    'note words': search(() => `window ${100 * (1 + Math.floor((Math.random() * total) / 100))}`),
    'creator (a quarter of all)': search(() => pick(['alice', 'bob', 'carol', 'dave'])),
    'workflow (a fifth of all)': search(() => pick(['noop', 'hello', 'validate_device'])),
    'no match': search(() => `nothing-${Math.random()}`),
    'no search, the last page': () => ({ offset: total - 25 }),
    'no search, a page in the middle': () => ({ offset: Math.floor(total / 2) - 25 }),
  };
  const base: ListQuery = { limit: 25, offset: 0, sort: 'startedAt', order: 'desc' };
  console.log(`\n| search | p50 ms | p95 ms | matches (last run) |\n|---|---|---|---|`);
  for (const [kind, text] of Object.entries(kinds)) {
    const times: number[] = [];
    let matches = 0;
    let capped = false;
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      const r = await listProcesses(pool, { ...base, ...text() });
      times.push(performance.now() - s);
      matches = r.total;
      capped = r.totalCapped;
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
    console.log(
      `| ${kind} | ${q(0.5).toFixed(1)} | ${q(0.95).toFixed(1)} | ${capped ? `more than ${matches}` : matches} |`,
    );
  }
  const explain = await pool.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(*) FROM orchestrator.processes p
      WHERE p.workflow_name = $1 OR p.created_by = $1
         OR (p.note IS NOT NULL AND to_tsvector('simple', p.note) @@ plainto_tsquery('simple', $1))
         OR p.id = ANY (ARRAY(SELECT st.process_id FROM orchestrator.process_steps st
              WHERE orchestrator.state_values(st.state) @> jsonb_build_array($1::text)
                AND st.id = (SELECT max(x.id) FROM orchestrator.process_steps x WHERE x.process_id = st.process_id)))`,
    [device()],
  );
  console.log(
    `\nplan of a device search's count:\n${explain.rows.map((r) => r['QUERY PLAN']).join('\n')}`,
  );
} finally {
  await pool.end();
  await db.drop();
  await stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

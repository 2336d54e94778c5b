// `npm run bench [-- --quick] [-- --peers] [-- --out FILE] [-- --pg-stats] [-- --only live]`:
// measures the ceiling, the pg-boss floor, the Celery + Redis peer (`--peers`) and the orchestrator
// side by side on one Postgres, prints a table and writes JSON. `--only live`: the ceiling, item
// 3's threadpool noop runs (without their database cost) and item 5, nothing else.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  CEILING_CONNECTIONS,
  measureCeiling,
  measureCommitLatency,
  stepTableTriggers,
  withoutTriggers,
} from './ceiling.ts';
import { CostProbe, type RunCost } from './dbcost.ts';
import { cpuSeconds, LiveClients, liveAvailable, measureLiveLatency } from './live.ts';
import { measureLatency } from './latency.ts';
import { CELERY_PROCESSES, findPeerTools, measureCeleryPeer, PEERS_APT } from './peers.ts';
import { measurePgBossFloor } from './pgboss.ts';
import { formatTable, type Figure } from './report.ts';
import { measureScale, seedProcesses } from './scale.ts';
import { quantile, repeat, summarize, summarizeLatency } from './stats.ts';
import {
  openBenchDatabase,
  startApi,
  startWorker,
  workerModeAvailable,
  type Api,
  type BenchDatabase,
  type NodeProcess,
} from './system.ts';
import { measureThroughput, type ThroughputRun } from './throughput.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'pg-stats': { type: 'boolean', default: false },
    peers: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
if (args.only !== undefined && args.only !== 'live') {
  process.stderr.write(`--only takes \`live\`, not \`${args.only}\`\n`);
  process.exit(2);
}
const liveOnly = args.only === 'live';

const PROFILES = {
  default: {
    runs: 3,
    ceilingMs: 2_000,
    floorJobs: 5_000,
    processes: 5_000,
    payloads: [
      [1_024, 600],
      [100 * 1_024, 200],
      [1_024 * 1_024, 30],
    ],
    latencyCount: 200,
    liveCount: 100,
    liveClients: 200,
    scaleRows: 1_000_000,
    scaleRequests: 200,
    /** Noop throughput runs (of `runs`) whose database cost is read; each waits ~10 s after. */
    costRuns: 3,
  },
  quick: {
    runs: 3,
    ceilingMs: 300,
    floorJobs: 200,
    processes: 150,
    payloads: [
      [1_024, 50],
      [100 * 1_024, 10],
      [1_024 * 1_024, 2],
    ],
    latencyCount: 10,
    liveCount: 5,
    liveClients: 200,
    scaleRows: 10_000,
    scaleRequests: 10,
    costRuns: 1,
  },
} as const;

const profileName = args.quick ? 'quick' : 'default';
const profile = PROFILES[profileName];
const STEPS_PER_PROCESS = 3;
const WORKERS = 2;

const benchStarted = Date.now();
const log = (msg: string) =>
  process.stderr.write(`[bench ${((Date.now() - benchStarted) / 1000).toFixed(0)} s] ${msg}\n`);
const figures: Figure[] = [];

function sizeLabel(bytes: number): string {
  return bytes >= 1_048_576 ? `${bytes / 1_048_576} MB` : `${bytes / 1_024} KB`;
}

async function withApi<T>(
  db: BenchDatabase,
  mode: 'threadpool' | 'worker',
  fn: (api: Api, workers: NodeProcess[]) => Promise<T>,
): Promise<T> {
  const api = await startApi(db, mode);
  const workers =
    mode === 'worker'
      ? await Promise.all(Array.from({ length: WORKERS }, () => startWorker(db)))
      : [];
  try {
    return await fn(api, workers);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await api.process.stop();
  }
}

async function main(): Promise<void> {
  log(`profile ${profileName}; worker mode ${workerModeAvailable ? 'available' : 'not available'}`);
  const db = await openBenchDatabase({ pgStats: args['pg-stats'] });
  // Ctrl-C: stop the database this run started (the API and workers die with their pipes).
  process.once('SIGINT', () => {
    log('interrupted: stopping the database');
    void db.close().finally(() => process.exit(130));
  });
  try {
    await run(db);
    if (args['pg-stats']) await printStatements(db.url);
  } finally {
    await db.close();
  }
  const table = formatTable([...figures].sort((a, b) => a.item - b.item));
  process.stdout.write(`\n${table}\n`);
  const seconds = (Date.now() - benchStarted) / 1000;
  // Other work on the machine shows in every figure: say how busy it was.
  machine.loadAverage = os.loadavg().map((l) => Math.round(l * 100) / 100);
  process.stdout.write(
    `\nprofile ${profileName}, ${seconds.toFixed(0)} s, ${machine.cpus}× ${machine.cpuModel}, ` +
      `${machine.memoryGb} GB, node ${process.version}, ${machine.database}, ` +
      `load average ${machine.loadAverage.join(' ')}\n`,
  );
  if (args.out) {
    fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
    fs.writeFileSync(
      args.out,
      `${JSON.stringify({ profile: profileName, date: new Date().toISOString(), seconds, machine, figures }, null, 2)}\n`,
    );
    log(`wrote ${args.out}`);
  }
}

const machine = {
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
  memoryGb: Math.round(os.totalmem() / 1024 ** 3),
  node: process.version,
  database: '',
  /** Where item 8's WAL flushes come from. */
  walFlushes: '',
  loadAverage: [] as number[],
};

async function run(db: BenchDatabase): Promise<void> {
  machine.database = db.describe;

  log('1. ceiling');
  // The reference: none of the orchestrator's triggers on the two tables a step commit writes.
  const triggers = await stepTableTriggers(db.url);
  log(
    `   triggers switched off for the ceiling: ${triggers.map((t) => t.name).join(', ') || 'none'}`,
  );
  // A warm-up run first (connections, caches); then the rows without and with triggers in turn,
  // so that drift on a shared machine does not favour one of them.
  await withoutTriggers(db.url, () => measureCeiling(db.url, profile.ceilingMs));
  const off: number[] = [];
  const on: number[] = [];
  for (let run = 0; run < profile.runs; run++) {
    off.push(await withoutTriggers(db.url, () => measureCeiling(db.url, profile.ceilingMs)));
    on.push(await measureCeiling(db.url, profile.ceilingMs));
  }
  const ceiling = summarize(off);
  const withTriggers = summarize(on);
  const commitRuns = await withoutTriggers(db.url, () =>
    repeat(profile.runs, async () => quantile(await measureCommitLatency(db.url, 300), 0.5)),
  );
  const commit = summarize(commitRuns).median;
  figures.push(
    {
      item: 1,
      label: `ceiling: step-shaped commits, ${CEILING_CONNECTIONS} connections, no triggers`,
      unit: 'commits/s',
      value: ceiling,
      ratio: 1,
    },
    {
      item: 1,
      label: 'one commit, idle, 1 connection, no triggers, p50',
      unit: 'ms',
      value: summarize(commitRuns),
      ratio: 1,
    },
    {
      item: 1,
      label: `the same with the orchestrator's ${triggers.length} triggers on`,
      unit: 'commits/s',
      value: withTriggers,
      ratio: withTriggers.median / ceiling.median,
    },
  );
  const rate = (v: number) => v / ceiling.median;
  const time = (v: number) => v / commit;
  // The reference of each big-state throughput row: the same statement with a state that big.
  const sizedCeiling = new Map<number, number>();
  for (const [bytes] of liveOnly ? [] : profile.payloads) {
    const s = summarize(
      await withoutTriggers(db.url, () =>
        repeat(profile.runs, () =>
          measureCeiling(db.url, profile.ceilingMs, { payloadBytes: bytes }),
        ),
      ),
    );
    sizedCeiling.set(bytes, s.median);
    figures.push({
      item: 1,
      label: `ceiling with a ${sizeLabel(bytes)} state, ${CEILING_CONNECTIONS} connections, no triggers`,
      unit: 'commits/s',
      value: s,
      ratio: rate(s.median),
    });
  }

  if (!liveOnly) {
    log('2. pg-boss floor');
    await db.reset();
    const floor = summarize(
      await measurePgBossFloor(db.url, {
        workers: WORKERS,
        jobs: profile.floorJobs,
        runs: profile.runs,
      }),
    );
    figures.push({
      item: 2,
      label: `pg-boss floor: no-op jobs, ${WORKERS} worker processes`,
      unit: 'jobs/s',
      value: floor,
      ratio: rate(floor.median),
    });
  }

  const peerLabel = `Celery + Redis: 3-step workflow, prefork ${CELERY_PROCESSES} processes, ${profile.processes} workflows`;
  let peer: number | undefined;
  if (liveOnly) {
    // No peer either.
  } else if (!args.peers) {
    figures.push({ item: 0, label: peerLabel, unit: 'workflows/s', missing: 'run with --peers' });
  } else {
    log('0. peer: Celery + Redis');
    const tools = findPeerTools();
    if (!tools) {
      log(`   Celery, Redis or psycopg2 not installed; to measure this row: ${PEERS_APT}`);
      figures.push({
        item: 0,
        label: peerLabel,
        unit: 'workflows/s',
        missing: `not installed: ${PEERS_APT}`,
      });
    } else {
      try {
        const s = summarize(
          await measureCeleryPeer(db.url, tools, {
            workflows: profile.processes,
            runs: profile.runs,
            timeoutMs: 300_000,
          }),
        );
        peer = s.median;
        figures.push({
          item: 0,
          label: peerLabel,
          unit: 'workflows/s',
          value: s,
          ratio: rate(s.median * STEPS_PER_PROCESS),
          peerRatio: 1,
        });
      } catch (err) {
        log(`   the Celery peer failed: ${String(err)}`);
        figures.push({
          item: 0,
          label: peerLabel,
          unit: 'workflows/s',
          missing: `failed: ${String(err).split('\n')[0]}`,
        });
      }
    }
  }
  /** A processes/s row: its ratio to the ceiling and, with the peer measured, to Celery. */
  const processesFigure = (
    item: number,
    label: string,
    value: ReturnType<typeof summarize>,
    withTarget: boolean,
  ): Figure => ({
    item,
    label,
    unit: 'processes/s',
    value,
    ratio: rate(value.median * STEPS_PER_PROCESS),
    ...(peer === undefined ? {} : { peerRatio: value.median / peer }),
    ...(peer === undefined || !withTarget
      ? {}
      : { target: '≥ 2× Celery', met: value.median >= 2 * peer }),
  });

  let threadpoolNoop: ReturnType<typeof summarize> | undefined;
  /** The API's CPU per process in those runs (ms), for item 5. */
  let threadpoolApiCpuMs = Number.NaN;
  for (const mode of liveOnly ? (['threadpool'] as const) : (['worker', 'threadpool'] as const)) {
    const name = mode === 'worker' ? `worker mode, ${WORKERS} workers` : 'threadpool';
    if (mode === 'worker' && !workerModeAvailable) {
      const missing = 'worker mode not available';
      for (const [item, label, unit] of [
        [3, `throughput ${name}`, 'steps/s'],
        [3, `throughput ${name}`, 'processes/s'],
        ...profile.payloads.map(
          ([b]) => [3, `throughput ${name}, ${sizeLabel(b)} state`, 'steps/s'] as const,
        ),
        [8, `DB cost per process, ${name}: commits`, 'commits'],
        [4, `POST → first step committed, ${name}, p50`, 'ms'],
        [4, `POST → first step committed, ${name}, p99`, 'ms'],
        [4, `POST → noop completed, ${name}, p50`, 'ms'],
        [4, `POST → noop completed, ${name}, p99`, 'ms'],
        [7, `peak RSS, API (${name})`, 'MB'],
        [7, `peak RSS, each worker`, 'MB'],
      ] as const)
        figures.push({ item, label, unit, missing });
      continue;
    }
    await withApi(db, mode, async (api, workers) => {
      log(
        `3. throughput, ${name}${liveOnly ? '' : ` (database cost of ${profile.costRuns} of the noop runs)`}`,
      );
      const probe = await CostProbe.open(db.url);
      let noop: ThroughputRun[];
      try {
        machine.walFlushes = probe.walFlushSource;
        const cpuBefore = cpuSeconds(api.process.child.pid);
        noop = await repeat(profile.runs, (run) =>
          measureThroughput(db, api.url, {
            processes: profile.processes,
            stateBytes: 0,
            ...(run < profile.costRuns && !liveOnly ? { cost: probe } : {}),
          }),
        );
        if (mode === 'threadpool')
          threadpoolApiCpuMs =
            ((cpuSeconds(api.process.child.pid) - cpuBefore) * 1000) /
            (profile.runs * profile.processes);
      } finally {
        await probe.close();
      }
      const steps = summarize(noop.map((r) => r.stepsPerSecond));
      const procs = summarize(noop.map((r) => r.processesPerSecond));
      if (mode === 'threadpool') threadpoolNoop = procs;
      const rssApi = api.process.peakRssMb();
      const rssWorkers = workers.map((w) => w.peakRssMb());
      figures.push(
        {
          item: 3,
          label: `throughput ${name}, ${profile.processes} noop`,
          unit: 'steps/s',
          value: steps,
          ratio: rate(steps.median),
          target: '≥ 0.5× ceiling',
          met: rate(steps.median) >= 0.5,
        },
        processesFigure(3, `throughput ${name}, ${profile.processes} noop`, procs, true),
      );
      figures.push(
        ...costFigures(
          name,
          noop.flatMap((r) => (r.cost ? [r.cost] : [])),
          mode === 'worker' ? 6 : 5,
        ),
      );
      for (const [bytes, count] of liveOnly ? [] : profile.payloads) {
        const r = await repeat(profile.runs, () =>
          measureThroughput(db, api.url, { processes: count, stateBytes: bytes }),
        );
        const s = summarize(r.map((x) => x.stepsPerSecond));
        const sized = s.median / sizedCeiling.get(bytes)!;
        figures.push({
          item: 3,
          label: `throughput ${name}, ${count} × ${sizeLabel(bytes)} state`,
          unit: 'steps/s',
          value: s,
          ratio: sized,
          target: `≥ 0.5× ${sizeLabel(bytes)} ceiling`,
          met: sized >= 0.5,
        });
      }

      if (!liveOnly) {
        log(`4. latency, ${name}`);
        await db.reset();
        const lat = await measureLatency(db.url, api.url, {
          count: profile.latencyCount,
          runs: profile.runs,
        });
        const first = summarizeLatency(lat.firstStep);
        const done = summarizeLatency(lat.completed);
        const doneTarget = mode === 'worker' ? 15 : 10;
        figures.push(
          latencyFigure(4, `POST → first step committed, ${name}, p50`, first.p50, 5),
          latencyFigure(4, `POST → first step committed, ${name}, p99`, first.p99, 25),
          latencyFigure(4, `POST → noop completed, ${name}, p50`, done.p50, doneTarget),
          latencyFigure(4, `POST → noop completed, ${name}, p99`, done.p99),
        );
      }

      if (mode === 'threadpool') {
        log('5. live latency');
        await db.reset();
        if (await liveAvailable(api.url)) await live(api);
        else {
          for (const c of [1, profile.liveClients])
            for (const q of ['p50', 'p99'])
              figures.push({
                item: 5,
                label: `live: commit → event, ${c} clients, ${q}`,
                unit: 'ms',
                missing: 'live events not available',
              });
        }
      }

      const memLimit = mode === 'worker' ? 200 : 200;
      figures.push({
        item: 7,
        label: `peak RSS, API (${name}), noop throughput`,
        unit: 'MB',
        value: summarize([rssApi]),
        target: `≤ ${memLimit} MB`,
        met: rssApi <= memLimit,
      });
      if (workers.length) {
        const worst = Math.max(...rssWorkers);
        figures.push({
          item: 7,
          label: 'peak RSS, each worker (min–max over workers), noop throughput',
          unit: 'MB',
          value: summarize(rssWorkers),
          target: '≤ 150 MB',
          met: worst <= 150,
        });
      }
      const afterPayloads = api.process.peakRssMb();
      figures.push({
        item: 7,
        label: `peak RSS, API (${name}), incl. big states${mode === 'threadpool' ? ' and live clients' : ''}`,
        unit: 'MB',
        value: summarize([afterPayloads]),
      });
      if (workers.length)
        figures.push({
          item: 7,
          label: 'peak RSS, each worker, incl. big states',
          unit: 'MB',
          value: summarize(workers.map((w) => w.peakRssMb())),
        });
    });
  }

  /** Live latency with 1 and with 200 clients, then throughput with the 200 connected. */
  async function live(api: Api): Promise<void> {
    for (const clients of [1, profile.liveClients]) {
      const conns = await LiveClients.start(api.url, clients);
      try {
        const runs = await measureLiveLatency(api.url, conns, {
          count: profile.liveCount,
          runs: profile.runs,
        });
        const l = summarizeLatency(runs);
        figures.push(
          latencyFigure(
            5,
            `live: commit → event, ${clients} clients, p50`,
            l.p50,
            clients > 1 ? 5 : undefined,
          ),
          latencyFigure(
            5,
            `live: commit → event, ${clients} clients, p99`,
            l.p99,
            clients > 1 ? 25 : undefined,
          ),
        );
        if (clients === 1) continue;
        log(`5. throughput, threadpool, ${clients} live clients connected`);
        const apiBefore = cpuSeconds(api.process.child.pid);
        const clientsBefore = conns.cpuSeconds();
        const r = await repeat(profile.runs, () =>
          measureThroughput(db, api.url, { processes: profile.processes, stateBytes: 0 }),
        );
        const perProcessMs = (s: number) => (s * 1000) / (profile.runs * profile.processes);
        const apiCpu = perProcessMs(cpuSeconds(api.process.child.pid) - apiBefore);
        const clientsCpu = perProcessMs(conns.cpuSeconds() - clientsBefore);
        const procs = summarize(r.map((x) => x.processesPerSecond));
        const base = threadpoolNoop!.median;
        const rel = summarize(r.map((x) => x.processesPerSecond / base));
        rel.median = procs.median / base;
        figures.push(
          processesFigure(
            5,
            `throughput threadpool, ${profile.processes} noop, ${clients} live clients`,
            procs,
            false,
          ),
          {
            item: 5,
            label: `the same ÷ no client connected (item 3's threadpool noop)`,
            unit: '×',
            value: rel,
            target: '≥ 0.9×',
            met: rel.median >= 0.9,
          },
        );
        // Where the CPU goes (utime + stime from /proc): on 2 cores the clients share the API's.
        figures.push(
          {
            item: 5,
            label: `API CPU per process, item 3's threadpool noop runs, no client`,
            unit: 'ms',
            value: summarize([threadpoolApiCpuMs]),
          },
          {
            item: 5,
            label: `API CPU per process, the same with ${clients} live clients`,
            unit: 'ms',
            value: summarize([apiCpu]),
          },
          {
            item: 5,
            label: `the ${clients} live clients' CPU per process (their child processes)`,
            unit: 'ms',
            value: summarize([clientsCpu]),
          },
        );
      } finally {
        await conns.close();
      }
    }
  }

  if (liveOnly) return;
  log(`6. scale: seeding ${profile.scaleRows.toLocaleString('en-US')} processes`);
  await db.reset();
  const seeded = await seedProcesses(db.url, profile.scaleRows);
  log(`   seeded in ${seeded.toFixed(1)} s`);
  await withApi(db, 'threadpool', async (api) => {
    const s = await measureScale(api.url, { requests: profile.scaleRequests, runs: profile.runs });
    const list = summarizeLatency(s.list);
    const counts = summarizeLatency(s.counts);
    const rows = profile.scaleRows.toLocaleString('en-US');
    figures.push(
      latencyFigure(6, `list failed, limit 50, ${rows} processes, p50`, list.p50, 20),
      latencyFigure(6, `list failed, limit 50, ${rows} processes, p99`, list.p99),
      latencyFigure(6, `status counts, ${rows} processes, p50`, counts.p50, 20),
      latencyFigure(6, `status counts, ${rows} processes, p99`, counts.p99),
    );
  });

  function latencyFigure(
    item: number,
    label: string,
    value: ReturnType<typeof summarize>,
    targetMs?: number,
  ): Figure {
    return {
      item,
      label,
      unit: 'ms',
      value,
      ratio: time(value.median),
      ...(targetMs === undefined
        ? {}
        : { target: `≤ ${targetMs} ms`, met: value.median <= targetMs }),
    };
  }
}

/**
 * Item 8: per process, over the noop runs whose cost was read. Commits exclude the bench's own
 * transactions (its polls for completion and its reads), which get a row of their own.
 */
function costFigures(name: string, costs: RunCost[], maxCommits: number): Figure[] {
  if (!costs.length) return [];
  const per = (f: (c: RunCost) => number) => summarize(costs.map((c) => f(c) / profile.processes));
  const commits = per((c) => c.commits - c.probeCommits);
  const out: Figure[] = [
    {
      item: 8,
      label: `DB cost per process, ${name}, noop: commits (the bench's own subtracted)`,
      unit: 'commits',
      value: commits,
      target: `≤ ${maxCommits}`,
      met: commits.median <= maxCommits,
    },
    {
      item: 8,
      label: `DB cost per process, ${name}: the bench's own commits (polls, reads)`,
      unit: 'commits',
      value: per((c) => c.probeCommits),
    },
    {
      item: 8,
      label: `DB cost per process, ${name}: rows inserted + updated + deleted`,
      unit: 'rows',
      value: per((c) => c.rows),
    },
    {
      item: 8,
      label: `DB cost per process, ${name}: WAL`,
      unit: 'bytes',
      value: per((c) => c.walBytes),
    },
  ];
  const flushes = costs.every((c) => c.walFlushes !== undefined);
  out.push({
    item: 8,
    label: `DB cost per process, ${name}: WAL flushes`,
    unit: 'flushes',
    ...(flushes
      ? { value: per((c) => c.walFlushes!) }
      : { missing: 'no WAL flush count on this server' }),
  });
  return out;
}

/** With --pg-stats: the statements that took the most time in the whole run. */
async function printStatements(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ calls: number; total: number; mean: number; query: string }>(
      `SELECT calls, round(total_exec_time)::int AS total, round(mean_exec_time::numeric, 3)::float AS mean,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS query
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`,
    );
    process.stdout.write('\npg_stat_statements, top 15 by total time (ms):\n');
    for (const r of rows)
      process.stdout.write(
        `${String(r.total).padStart(8)} ${String(r.calls).padStart(8)} calls ${r.mean} ms  ${r.query}\n`,
      );
  } finally {
    await c.end();
  }
}

await main();

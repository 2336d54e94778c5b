// `npm run bench [-- --quick] [-- --peers] [-- --out FILE] [-- --pg-stats] [-- --only live|fanout]
// [-- --server LIST]` (`--only` also takes `page`): measures the ceiling, the pg-boss floor, the Celery + Redis peer (`--peers`)
// and the orchestrator side by side on one Postgres, prints a table and writes JSON. `--only
// live`: the ceiling, item 3's threadpool noop runs (without their database cost) and item 5,
// nothing else. `--only fanout`: the ceiling and item 9 (with `--peers`, its Celery row). `--only
// page`: the ceiling and item 10 (the operator page in Chromium during a burst). `--server embedded,stock`: the whole profile on each server in turn, a table each
// (`embedded`, the default; `stock`, `stock:MAJOR`, `embedded:MAJOR`: scripts/test-server.sh);
// without `--server`, on DATABASE_URL's server when it is set.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseServerSpec, type ServerSpec } from '../support/test-server.ts';
import {
  CEILING_CONNECTIONS,
  measureCeiling,
  measureCommitLatency,
  stepTableTriggers,
  withoutTriggers,
} from './ceiling.ts';
import { TimeLimitError } from './client.ts';
import { CostProbe, type RunCost } from './dbcost.ts';
import { cpuSeconds, LiveClients, liveAvailable, measureLiveLatency } from './live.ts';
import { measureFanout, postmasterPid, type FanoutRun } from './fanout.ts';
import { measureLatency } from './latency.ts';
import { CELERY_PROCESSES, findPeerTools, measureCeleryPeer, PEERS_APT } from './peers.ts';
import { measurePage, pageFigures, pageWorkflows } from './page.ts';
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
    /** Comma-separated: embedded (default), stock, stock:MAJOR, embedded:MAJOR. */
    server: { type: 'string' },
  },
});
if (args.only !== undefined && !['live', 'fanout', 'page'].includes(args.only)) {
  process.stderr.write(`--only takes \`live\`, \`fanout\` or \`page\`, not \`${args.only}\`\n`);
  process.exit(2);
}
const liveOnly = args.only === 'live';
const fanoutOnly = args.only === 'fanout';
const pageOnly = args.only === 'page';
/** Only some items: the ceiling and those. */
const someOnly = liveOnly || fanoutOnly || pageOnly;
/** The servers to run on, in order; `undefined`: DATABASE_URL's server. */
const servers: (ServerSpec | undefined)[] =
  args.server === undefined
    ? [process.env.DATABASE_URL ? undefined : 'embedded']
    : args.server.split(',').map((s) => s.trim());
for (const spec of servers) {
  try {
    if (spec !== undefined) parseServerSpec(spec);
  } catch (err) {
    process.stderr.write(`--server: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

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
    /** Item 9: children of the one fan-out task. */
    fanoutChildren: 10_000,
    /** Item 10: noop processes started while the operator page is measured. */
    pageBurst: 1_000,
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
    fanoutChildren: 500,
    pageBurst: 300,
  },
} as const;

const profileName = args.quick ? 'quick' : 'default';
const profile = PROFILES[profileName];
const STEPS_PER_PROCESS = 3;
const WORKERS = 2;

const benchStarted = Date.now();
const log = (msg: string) =>
  process.stderr.write(`[bench ${((Date.now() - benchStarted) / 1000).toFixed(0)} s] ${msg}\n`);

/** One server's run: what it is and its figures (those measured so far when it failed). */
interface ServerRun {
  /** Its `--server` spec; absent for DATABASE_URL's server. */
  server?: ServerSpec;
  /** What it runs on (BenchDatabase.describe). */
  database: string;
  seconds: number;
  /** Where item 8's WAL flushes come from on this server. */
  walFlushes?: string;
  /** Why the run stopped part-way, when it did. */
  error?: string;
  figures: Figure[];
}

/** What failed in the whole run (a server, or a mode that could not warm up): the exit code is 1. */
const failures: string[] = [];

/** A mode that cannot finish this warm-up in time is reported as failed, not measured. */
const WARM_UP_PROCESSES = 50;
const WARM_UP_MS = 60_000;

type Mode = 'threadpool' | 'worker';
type Row = Pick<Figure, 'item' | 'label' | 'unit'>;

function sizeLabel(bytes: number): string {
  return bytes >= 1_048_576 ? `${bytes / 1_048_576} MB` : `${bytes / 1_024} KB`;
}

/**
 * An error's first line, with the next one when it ends in a colon (`the API exited…:\nwhy`), at
 * most 120 characters: for a table cell.
 */
function firstLine(message: string): string {
  const [first = '', ...rest] = message.split('\n').filter((l) => l.trim());
  const next = rest[0];
  const line = first.endsWith(':') && next !== undefined ? `${first} ${next.trim()}` : first;
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

function modeName(mode: Mode): string {
  return mode === 'worker' ? `worker mode, ${WORKERS} workers` : 'threadpool';
}

/** The API and workers running now: killed when the bench is interrupted or crashes. */
const running = new Set<NodeProcess>();

async function withApi<T>(
  db: BenchDatabase,
  mode: Mode,
  fn: (api: Api, workers: NodeProcess[]) => Promise<T>,
  extraEnv: Record<string, string> = {},
): Promise<T> {
  const api = await startApi(db, mode, extraEnv);
  running.add(api.process);
  const workers: NodeProcess[] = [];
  try {
    if (mode === 'worker') {
      // Those that started are stopped below when another one fails.
      const started = await Promise.allSettled(
        Array.from({ length: WORKERS }, async () => {
          const w = await startWorker(db);
          running.add(w);
          workers.push(w);
        }),
      );
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
    }
    return await fn(api, workers);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await api.process.stop();
    for (const p of [api.process, ...workers]) running.delete(p);
  }
}

/**
 * withApi after a warm-up: WARM_UP_PROCESSES noop processes through the API, at most WARM_UP_MS.
 * A mode whose API or workers do not start, or that cannot finish the warm-up in time (a hopeless
 * server: every measured run would wait its 5 minutes), is not measured: returns why. With
 * `settle`, the warm-up runs with a cost probe, which waits until every backend has reported its
 * statistics, so that none of the warm-up counts in the first measured run's database cost.
 */
async function withWarmApi(
  db: BenchDatabase,
  mode: Mode,
  opts: { settle: boolean },
  fn: (api: Api, workers: NodeProcess[]) => Promise<void>,
): Promise<string | undefined> {
  const state = { warm: false };
  try {
    await withApi(db, mode, async (api, workers) => {
      log(`3. ${modeName(mode)}: warm-up, ${WARM_UP_PROCESSES} noop processes`);
      const probe = opts.settle ? await CostProbe.open(db.url) : undefined;
      try {
        await measureThroughput(db, api.url, {
          processes: WARM_UP_PROCESSES,
          stateBytes: 0,
          timeoutMs: WARM_UP_MS,
          ...(probe ? { cost: probe } : {}),
        });
      } finally {
        await probe?.close();
      }
      state.warm = true;
      await fn(api, workers);
    });
    return undefined;
  } catch (err) {
    if (state.warm) throw err;
    const message = err instanceof Error ? err.message : String(err);
    log(`   ${modeName(mode)} failed, not measured: ${message}`);
    return err instanceof TimeLimitError
      ? `failed: warm-up of ${WARM_UP_PROCESSES} noop processes did not finish in ${WARM_UP_MS / 1000} s`
      : `failed: ${firstLine(message)}`;
  }
}

async function main(): Promise<void> {
  log(`profile ${profileName}; worker mode ${workerModeAvailable ? 'available' : 'not available'}`);
  if (args.server !== undefined && process.env.DATABASE_URL)
    log('--server given: DATABASE_URL is not used');
  const runs: ServerRun[] = [];
  /** With --pg-stats: each server's top statements, printed after its table. */
  const statements = new Map<ServerRun, string>();
  /** The database being opened or open, until it is closed. */
  let current: Promise<BenchDatabase> | undefined;
  // Ctrl-C, or a crash (e.g. an `error` event nothing listens to): kill the API and workers and
  // stop the database this run started (for `stock`, a cluster of the system's; one being
  // started is stopped once it is up), once; the bench's own connections that this drops may
  // crash it again meanwhile.
  let abandoning = false;
  const abandon = (why: string, code: number) => {
    if (abandoning) {
      log(`   while stopping: ${why.split('\n')[0]}`);
      return;
    }
    abandoning = true;
    log(`${why}: stopping the database`);
    for (const p of running) p.child.kill('SIGKILL');
    void (current ?? Promise.resolve(undefined))
      .then((db) => db?.close())
      .catch((err: unknown) => log(`   stopping the database failed: ${String(err)}`))
      .finally(() => process.exit(code));
  };
  process.once('SIGINT', () => abandon('interrupted', 130));
  process.on('uncaughtException', (err) => abandon(`crashed: ${err.stack ?? err.message}`, 1));
  for (const server of servers) {
    if (abandoning) break;
    const started = Date.now();
    const result: ServerRun = {
      ...(server === undefined ? {} : { server }),
      database: server ?? 'DATABASE_URL server',
      seconds: 0,
      figures: [],
    };
    runs.push(result);
    log(`server ${server ?? 'DATABASE_URL'}: starting`);
    try {
      current = openBenchDatabase({
        pgStats: args['pg-stats'],
        ...(server === undefined ? {} : { server }),
      });
      const db = await current;
      result.database = db.describe;
      log(`database: ${db.describe}`);
      try {
        await run(db, result);
        if (args['pg-stats']) statements.set(result, await topStatements(db.url));
      } finally {
        await db.close();
        current = undefined;
      }
    } catch (err) {
      current = undefined;
      result.error = err instanceof Error ? err.message : String(err);
      failures.push(`${result.database}: ${firstLine(result.error)}`);
      log(`${result.database} failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    }
    result.seconds = (Date.now() - started) / 1000;
  }
  for (const r of runs) {
    const spec = r.server === undefined || r.server === r.database ? '' : ` (--server ${r.server})`;
    process.stdout.write(`\n${r.database}${spec}, ${r.seconds.toFixed(0)} s:\n`);
    if (r.figures.length)
      process.stdout.write(`${formatTable([...r.figures].sort((a, b) => a.item - b.item))}\n`);
    if (r.error) process.stdout.write(`FAILED, not measured further: ${firstLine(r.error)}\n`);
    const top = statements.get(r);
    if (top) process.stdout.write(top);
  }
  const seconds = (Date.now() - benchStarted) / 1000;
  // Other work on the machine shows in every figure: say how busy it was.
  machine.loadAverage = os.loadavg().map((l) => Math.round(l * 100) / 100);
  process.stdout.write(
    `\nprofile ${profileName}, ${seconds.toFixed(0)} s, ${machine.cpus}× ${machine.cpuModel}, ` +
      `${machine.memoryGb} GB, node ${process.version}, load average ${machine.loadAverage.join(' ')}\n`,
  );
  if (args.out) {
    fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
    // `figures`: the first server's, where the files of single-server runs had them.
    const report = {
      profile: profileName,
      date: new Date().toISOString(),
      seconds,
      machine,
      servers: runs.map(({ server, database, seconds, walFlushes, error, figures }) => ({
        server,
        database,
        seconds,
        walFlushes,
        error,
        figures,
      })),
      figures: runs[0]?.figures ?? [],
    };
    fs.writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${args.out}`);
  }
  if (failures.length) {
    log(`failed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

const machine = {
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
  memoryGb: Math.round(os.totalmem() / 1024 ** 3),
  node: process.version,
  loadAverage: [] as number[],
};

/** The whole profile on one server; its figures go to `result`. */
async function run(db: BenchDatabase, result: ServerRun): Promise<void> {
  const { figures } = result;
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
  for (const [bytes] of someOnly ? [] : profile.payloads) {
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

  if (!someOnly) {
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
  const peerTools = args.peers ? findPeerTools() : undefined;
  if (someOnly) {
    // No peer either.
  } else if (!args.peers) {
    figures.push({ item: 0, label: peerLabel, unit: 'workflows/s', missing: 'run with --peers' });
  } else {
    log('0. peer: Celery + Redis');
    const tools = peerTools;
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
    row: Row,
    value: ReturnType<typeof summarize>,
    withTarget: boolean,
  ): Figure => ({
    ...row,
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
  /** Why threadpool mode was not measured (item 6 runs on it too). */
  let threadpoolFailed: string | undefined;
  const modes = liveOnly ? ['threadpool'] : fanoutOnly || pageOnly ? [] : ['worker', 'threadpool'];
  for (const mode of modes as Mode[]) {
    const name = modeName(mode);
    const rows = modeRows(mode);
    const missing = (why: string) => {
      for (const row of modeRowList(mode, rows)) figures.push({ ...row, missing: why });
    };
    if (mode === 'worker' && !workerModeAvailable) {
      missing('worker mode not available');
      continue;
    }
    const failed = await withWarmApi(db, mode, { settle: !liveOnly }, async (api, workers) => {
      log(
        `3. throughput, ${name}${liveOnly ? '' : ` (database cost of ${profile.costRuns} of the noop runs)`}`,
      );
      const probe = await CostProbe.open(db.url);
      let noop: ThroughputRun[];
      try {
        result.walFlushes = probe.walFlushSource;
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
          ...rows.noopSteps,
          value: steps,
          ratio: rate(steps.median),
          target: '≥ 0.5× ceiling',
          met: rate(steps.median) >= 0.5,
        },
        processesFigure(rows.noopProcesses, procs, true),
      );
      figures.push(
        ...costFigures(
          rows.cost,
          noop.flatMap((r) => (r.cost ? [r.cost] : [])),
          mode === 'worker' ? 6 : 5,
        ),
      );
      if (!liveOnly)
        for (const [i, row] of rows.payloads.entries()) {
          const [bytes, count] = profile.payloads[i]!;
          const r = await repeat(profile.runs, () =>
            measureThroughput(db, api.url, { processes: count, stateBytes: bytes }),
          );
          const s = summarize(r.map((x) => x.stepsPerSecond));
          const sized = s.median / sizedCeiling.get(bytes)!;
          figures.push({
            ...row,
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
          latencyFigure(rows.firstP50, first.p50, 5),
          latencyFigure(rows.firstP99, first.p99, 25),
          latencyFigure(rows.doneP50, done.p50, doneTarget),
          latencyFigure(rows.doneP99, done.p99),
        );
      }

      if (mode === 'threadpool') {
        log('5. live latency');
        await db.reset();
        if (await liveAvailable(api.url)) await live(api, rows);
        else {
          for (const c of [1, profile.liveClients])
            for (const q of ['p50', 'p99'] as const)
              figures.push({ ...rows.liveLatency(c, q), missing: 'live events not available' });
        }
      }

      const memLimit = mode === 'worker' ? 200 : 200;
      figures.push({
        ...rows.apiNoop,
        value: summarize([rssApi]),
        target: `≤ ${memLimit} MB`,
        met: rssApi <= memLimit,
      });
      if (workers.length) {
        const worst = Math.max(...rssWorkers);
        figures.push({
          ...rows.workerNoop,
          value: summarize(rssWorkers),
          target: '≤ 150 MB',
          met: worst <= 150,
        });
      }
      const afterPayloads = api.process.peakRssMb();
      figures.push({ ...rows.apiAll, value: summarize([afterPayloads]) });
      if (workers.length)
        figures.push({ ...rows.workerAll, value: summarize(workers.map((w) => w.peakRssMb())) });
    });
    if (failed) {
      failures.push(`${db.describe}: ${name}: ${failed}`);
      missing(failed);
      if (mode === 'threadpool') threadpoolFailed = failed;
    }
  }

  /** Live latency with 1 and with 200 clients, then throughput with the 200 connected. */
  async function live(api: Api, rows: ModeRows): Promise<void> {
    for (const clients of [1, profile.liveClients]) {
      const conns = await LiveClients.start(api.url, clients);
      try {
        const runs = await measureLiveLatency(api.url, conns, {
          count: profile.liveCount,
          runs: profile.runs,
        });
        const l = summarizeLatency(runs);
        figures.push(
          latencyFigure(rows.liveLatency(clients, 'p50'), l.p50, clients > 1 ? 5 : undefined),
          latencyFigure(rows.liveLatency(clients, 'p99'), l.p99, clients > 1 ? 25 : undefined),
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
        figures.push(processesFigure(rows.liveThroughput, procs, false), {
          ...rows.liveRatio,
          value: rel,
          target: '≥ 0.9×',
          met: rel.median >= 0.9,
        });
        // Where the CPU goes (utime + stime from /proc): on 2 cores the clients share the API's.
        figures.push(
          { ...rows.apiCpuNoClient, value: summarize([threadpoolApiCpuMs]) },
          { ...rows.apiCpuClients, value: summarize([apiCpu]) },
          { ...rows.clientsCpu, value: summarize([clientsCpu]) },
        );
      } finally {
        await conns.close();
      }
    }
  }

  if (liveOnly) return;
  if (!pageOnly) await measureFanoutItem(db, figures, { rate, peerTools });
  if (fanoutOnly) return;
  await measurePageItem(db, figures);
  if (pageOnly) return;
  const seededRows = profile.scaleRows.toLocaleString('en-US');
  const scaleRow = (what: string, q: 'p50' | 'p99') =>
    row(6, `${what}, ${seededRows} processes, ${q}`, 'ms');
  const [listP50, listP99, countsP50, countsP99] = [
    scaleRow('list failed, limit 50', 'p50'),
    scaleRow('list failed, limit 50', 'p99'),
    scaleRow('status counts', 'p50'),
    scaleRow('status counts', 'p99'),
  ] as const;
  if (threadpoolFailed) {
    // It runs on the threadpool API, which could not even warm up.
    for (const r of [listP50, listP99, countsP50, countsP99])
      figures.push({ ...r, missing: threadpoolFailed });
    return;
  }
  log(`6. scale: seeding ${seededRows} processes`);
  await db.reset();
  const seeded = await seedProcesses(db.url, profile.scaleRows);
  log(`   seeded in ${seeded.toFixed(1)} s`);
  await withApi(db, 'threadpool', async (api) => {
    const s = await measureScale(api.url, { requests: profile.scaleRequests, runs: profile.runs });
    const list = summarizeLatency(s.list);
    const counts = summarizeLatency(s.counts);
    figures.push(
      latencyFigure(listP50, list.p50, 20),
      latencyFigure(listP99, list.p99),
      latencyFigure(countsP50, counts.p50, 20),
      latencyFigure(countsP99, counts.p99),
    );
  });

  function latencyFigure(row: Row, value: ReturnType<typeof summarize>, targetMs?: number): Figure {
    return {
      ...row,
      value,
      ratio: time(value.median),
      ...(targetMs === undefined
        ? {}
        : { target: `≤ ${targetMs} ms`, met: value.median <= targetMs }),
    };
  }
}

function row(item: number, label: string, unit: string): Row {
  return { item, label, unit };
}

/** The rows of a mode's measurements: their labels, and those of a mode that could not run. */
function modeRows(mode: Mode) {
  const name = modeName(mode);
  const noop = `throughput ${name}, ${profile.processes} noop`;
  const clients = profile.liveClients;
  return {
    noopSteps: row(3, noop, 'steps/s'),
    noopProcesses: row(3, noop, 'processes/s'),
    cost: costRows(name),
    /** One per profile.payloads entry, in its order. */
    payloads: profile.payloads.map(([bytes, count]) =>
      row(3, `throughput ${name}, ${count} × ${sizeLabel(bytes)} state`, 'steps/s'),
    ),
    firstP50: row(4, `POST → first step committed, ${name}, p50`, 'ms'),
    firstP99: row(4, `POST → first step committed, ${name}, p99`, 'ms'),
    doneP50: row(4, `POST → noop completed, ${name}, p50`, 'ms'),
    doneP99: row(4, `POST → noop completed, ${name}, p99`, 'ms'),
    // Item 5, threadpool only.
    liveLatency: (c: number, q: 'p50' | 'p99') =>
      row(5, `live: commit → event, ${c} clients, ${q}`, 'ms'),
    liveThroughput: row(
      5,
      `throughput threadpool, ${profile.processes} noop, ${clients} live clients`,
      'processes/s',
    ),
    liveRatio: row(5, `the same ÷ no client connected (item 3's threadpool noop)`, '×'),
    apiCpuNoClient: row(5, `API CPU per process, item 3's threadpool noop runs, no client`, 'ms'),
    apiCpuClients: row(5, `API CPU per process, the same with ${clients} live clients`, 'ms'),
    clientsCpu: row(
      5,
      `the ${clients} live clients' CPU per process (their child processes)`,
      'ms',
    ),
    apiNoop: row(7, `peak RSS, API (${name}), noop throughput`, 'MB'),
    workerNoop: row(7, 'peak RSS, each worker (min–max over workers), noop throughput', 'MB'),
    apiAll: row(
      7,
      `peak RSS, API (${name}), incl. big states${mode === 'threadpool' ? ' and live clients' : ''}`,
      'MB',
    ),
    workerAll: row(7, 'peak RSS, each worker, incl. big states', 'MB'),
  };
}
type ModeRows = ReturnType<typeof modeRows>;

/** The rows a mode measures, in order (what it shows as n/a when it cannot run). */
function modeRowList(mode: Mode, r: ModeRows): Row[] {
  const worker = mode === 'worker';
  return [
    r.noopSteps,
    r.noopProcesses,
    ...(liveOnly ? [] : [...r.cost, ...r.payloads, r.firstP50, r.firstP99, r.doneP50, r.doneP99]),
    ...(worker
      ? []
      : [
          ...[1, profile.liveClients].flatMap((c) => [
            r.liveLatency(c, 'p50'),
            r.liveLatency(c, 'p99'),
          ]),
          r.liveThroughput,
          r.liveRatio,
          r.apiCpuNoClient,
          r.apiCpuClients,
          r.clientsCpu,
        ]),
    r.apiNoop,
    ...(worker ? [r.workerNoop] : []),
    r.apiAll,
    ...(worker ? [r.workerAll] : []),
  ];
}

/** Item 8's rows of a mode, in costFigures' order. */
function costRows(name: string): [Row, Row, Row, Row, Row] {
  return [
    row(8, `DB cost per process, ${name}, noop: commits (the bench's own subtracted)`, 'commits'),
    row(8, `DB cost per process, ${name}: the bench's own commits (polls, reads)`, 'commits'),
    row(8, `DB cost per process, ${name}: rows inserted + updated + deleted`, 'rows'),
    row(8, `DB cost per process, ${name}: WAL`, 'bytes'),
    row(8, `DB cost per process, ${name}: WAL flushes`, 'flushes'),
  ];
}

/**
 * Item 8: per process, over the noop runs whose cost was read. Commits exclude the bench's own
 * transactions (its polls for completion and its reads), which get a row of their own.
 */
function costFigures(
  [commitsRow, ownRow, rowsRow, walRow, flushesRow]: [Row, Row, Row, Row, Row],
  costs: RunCost[],
  maxCommits: number | undefined,
  /** What the costs are divided by: processes (item 8) or children (item 9). */
  count: number = profile.processes,
): Figure[] {
  if (!costs.length) return [];
  const per = (f: (c: RunCost) => number) => summarize(costs.map((c) => f(c) / count));
  const commits = per((c) => c.commits - c.probeCommits);
  const flushes = costs.every((c) => c.walFlushes !== undefined);
  return [
    {
      ...commitsRow,
      value: commits,
      ...(maxCommits === undefined
        ? {}
        : { target: `≤ ${maxCommits}`, met: commits.median <= maxCommits }),
    },
    { ...ownRow, value: per((c) => c.probeCommits) },
    { ...rowsRow, value: per((c) => c.rows) },
    { ...walRow, value: per((c) => c.walBytes) },
    {
      ...flushesRow,
      ...(flushes
        ? { value: per((c) => c.walFlushes!) }
        : { missing: 'no WAL flush count on this server' }),
    },
  ];
}

/**
 * Item 9, fan-out: one task starting `fanoutChildren` noop children in worker mode (2 workers),
 * `runs` runs (the database cost of the first `costRuns`), and with `--peers` the Celery design
 * doing the same (one task inserting the rows and sending a task per child) on the same Postgres.
 */
async function measureFanoutItem(
  db: BenchDatabase,
  figures: Figure[],
  o: { rate: (perSecond: number) => number; peerTools: ReturnType<typeof findPeerTools> },
): Promise<void> {
  const n = profile.fanoutChildren;
  const count = n.toLocaleString('en-US');
  const name = modeName('worker');
  const peerRow = row(
    9,
    `Celery + Redis fan-out: one task inserting ${count} rows, sending ${count} workflow tasks`,
    'workflows/s',
  );
  const rows = {
    children: row(9, `fan-out, ${name}: one task, ${count} noop children`, 'children/s'),
    steps: row(9, `fan-out, ${name}: the children's committed steps`, 'steps/s'),
    last: row(9, `fan-out: the task's start → its last child committed`, 's'),
    parent: row(9, `fan-out: the task's start → the task completed`, 's'),
    cost: [
      row(9, `DB cost per child, fan-out: commits (the bench's own subtracted)`, 'commits'),
      row(9, `DB cost per child, fan-out: the bench's own commits (polls, reads)`, 'commits'),
      row(9, `DB cost per child, fan-out: rows inserted + updated + deleted`, 'rows'),
      row(9, `DB cost per child, fan-out: WAL`, 'bytes'),
      row(9, `DB cost per child, fan-out: WAL flushes`, 'flushes'),
    ] as [Row, Row, Row, Row, Row],
    cpu: (who: string) => row(9, `CPU per child, fan-out: ${who}`, 'ms'),
  };
  let peer: number | undefined;
  if (!args.peers) figures.push({ ...peerRow, missing: 'run with --peers' });
  else if (!o.peerTools) figures.push({ ...peerRow, missing: `not installed: ${PEERS_APT}` });
  else {
    log(`9. fan-out, Celery + Redis: ${count} workflows from one task`);
    try {
      const s = summarize(
        await measureCeleryPeer(db.url, o.peerTools, {
          workflows: n,
          runs: profile.runs,
          timeoutMs: 600_000,
          fanout: true,
        }),
      );
      peer = s.median;
      figures.push({
        ...peerRow,
        value: s,
        ratio: o.rate(s.median * STEPS_PER_PROCESS),
        peerRatio: 1,
      });
    } catch (err) {
      log(`   the Celery fan-out failed: ${String(err)}`);
      figures.push({ ...peerRow, missing: `failed: ${String(err).split('\n')[0]}` });
    }
  }
  if (!workerModeAvailable) {
    for (const r of [rows.children, rows.steps, rows.last, rows.parent])
      figures.push({ ...r, missing: 'worker mode not available' });
    return;
  }
  const failed = await withWarmApi(db, 'worker', { settle: true }, async (api, workers) => {
    log(`9. fan-out, ${name}: ${count} children, ${profile.runs} runs`);
    const probe = await CostProbe.open(db.url);
    let runs: FanoutRun[];
    try {
      const watch = {
        api: api.process.child.pid,
        workers: workers.map((w) => w.child.pid),
        postmaster: await postmasterPid(probe.client),
      };
      runs = await repeat(profile.runs, async (run) => {
        const r = await measureFanout(db, api.url, {
          children: n,
          watch,
          ...(run < profile.costRuns ? { cost: probe } : {}),
        });
        log(
          `   ${r.childrenPerSecond.toFixed(0)} children/s, ${r.seconds.toFixed(1)} s ` +
            `(task completed at ${r.parentSeconds.toFixed(1)} s)`,
        );
        return r;
      });
    } finally {
      await probe.close();
    }
    const children = summarize(runs.map((r) => r.childrenPerSecond));
    const steps = summarize(runs.map((r) => r.stepsPerSecond));
    figures.push(
      {
        ...rows.children,
        value: children,
        ratio: o.rate(children.median * STEPS_PER_PROCESS),
        ...(peer === undefined
          ? {}
          : {
              peerRatio: children.median / peer,
              target: '≥ 2× Celery',
              met: children.median >= 2 * peer,
            }),
      },
      {
        ...rows.steps,
        value: steps,
        ratio: o.rate(steps.median),
        target: '≥ 0.5× ceiling',
        met: o.rate(steps.median) >= 0.5,
      },
      { ...rows.last, value: summarize(runs.map((r) => r.seconds)) },
      { ...rows.parent, value: summarize(runs.map((r) => r.parentSeconds)) },
      ...costFigures(
        rows.cost,
        runs.flatMap((r) => (r.cost ? [r.cost] : [])),
        undefined,
        n,
      ),
    );
    // Where the CPU went, per child, start to the task's completion.
    for (const [who, key] of [
      ['Postgres (all its processes)', 'postgres'],
      [`the ${WORKERS} workers`, 'workers'],
      ['the API', 'api'],
      ['the benchmark (polls)', 'bench'],
    ] as const)
      figures.push({
        ...rows.cpu(who),
        value: summarize(runs.map((r) => (r.cpu[key] * 1000) / n)),
      });
  });
  if (failed) {
    failures.push(`${db.describe}: fan-out: ${failed}`);
    for (const r of [rows.children, rows.steps, rows.last, rows.parent])
      figures.push({ ...r, missing: failed });
  }
}

/**
 * Item 10: the operator page in headless Chromium while `pageBurst` noop processes run through the
 * threadpool API (scripts/bench/page.ts); `runs` runs with the process list open, one with a
 * process's page.
 */
async function measurePageItem(db: BenchDatabase, figures: Figure[]): Promise<void> {
  const n = profile.pageBurst;
  log(`10. operator page: ${n} noop burst, ${profile.runs} runs on #/ and one on #/process/<id>`);
  const workflows = pageWorkflows();
  try {
    const runs = await withApi(
      db,
      'threadpool',
      (api) => measurePage(db, api, { burst: n, runs: profile.runs, log }),
      { WORKFLOWS_DIR: workflows.dir },
    );
    figures.push(...pageFigures(runs, n));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`   the operator page failed: ${message}`);
    failures.push(`${db.describe}: operator page: ${firstLine(message)}`);
    figures.push(...pageFigures(`failed: ${firstLine(message)}`, n));
  } finally {
    workflows.remove();
  }
}

/** With --pg-stats: the statements that took the most time in the server's run, as text. */
async function topStatements(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ calls: number; total: number; mean: number; query: string }>(
      `SELECT calls, round(total_exec_time)::int AS total, round(mean_exec_time::numeric, 3)::float AS mean,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS query
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`,
    );
    return [
      '\npg_stat_statements, top 15 by total time (ms):\n',
      ...rows.map(
        (r) =>
          `${String(r.total).padStart(8)} ${String(r.calls).padStart(8)} calls ${r.mean} ms  ${r.query}\n`,
      ),
    ].join('');
  } finally {
    await c.end();
  }
}

await main();

// `npm run cluster -- up|bench|chaos|down [options]`: several machines simulated on this one with
// network namespaces (scripts/cluster/net.ts): a Postgres host (Debian's postgresql-15), two API
// hosts, `--workers` worker hosts and a client host on one bridge, every link delayed (`--delay-ms`,
// default 0.5 each way: 1 ms round trip; `--loss` %, default 0) by `tc netem`, or without sch_netem
// by iptables and NFQUEUE (net.ts, `shapingMechanism`). Needs root and iproute2. Everything it made is torn down when it exits, however it exits; `down` removes what a
// killed run left.
//   up      builds it, starts the processes, prints the addresses, waits for Ctrl-C
//   bench   REST throughput, fan-out and POST → first step latency, with no delay (with nfqueue: then
//           through the delayers at 0 ms, the hop's own cost) and then at the delay, statements per
//           process by component (pg_stat_statements, a role each), the delayers' CPU
//   chaos   the network's faults under load (scripts/cluster/chaos.ts), then the invariants
//   down    removes namespaces and processes a killed run left behind
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { root } from '../support/node-process.ts';
import { runChaos } from './chaos.ts';
import {
  build,
  cannotBuild,
  delayerStats,
  shapeAll,
  shapingMechanism,
  shapingReady,
  type DelayerStats,
  teardown,
  topology,
  type Host,
  type Topology,
} from './net.ts';
import { startSystem, type System } from './system.ts';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    workers: { type: 'string', default: '2' },
    'delay-ms': { type: 'string', default: '0.5' },
    loss: { type: 'string', default: '0' },
    profile: { type: 'string', default: 'short' },
    processes: { type: 'string' },
    children: { type: 'string' },
  },
});
const action = positionals[0];
const log = (msg: string) => process.stderr.write(`[cluster] ${msg}\n`);

if (!['up', 'bench', 'chaos', 'down'].includes(action ?? '')) {
  process.stderr.write(
    'usage: npm run cluster -- up|bench|chaos|down [--workers N] [--delay-ms MS] [--loss PCT] [--profile short|full]\n',
  );
  process.exit(2);
}
const why = cannotBuild();
if (why) {
  process.stderr.write(`[cluster] cannot simulate hosts here: ${why}\n`);
  process.exit(2);
}
if (action === 'down') {
  teardown();
  log('removed');
  process.exit(0);
}

const shape = { delayMs: Number(args['delay-ms']), lossPct: Number(args.loss) };
const t = topology(Math.max(2, Number(args.workers)));
let system: System | undefined;
// Whatever happens, nothing of ours outlives the run.
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  teardown();
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.once(sig, () => {
    log(`${sig}: tearing down`);
    cleanup();
    process.exit(130);
  });

/** Runs scripts/cluster/client.ts on the client host; its result. */
export function onClient<T>(client: Host, command: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        client.ns,
        process.execPath,
        path.join(root, 'scripts/cluster/client.ts'),
        JSON.stringify(command),
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as T);
      else reject(new Error(`client ${String(command.cmd)} failed (${code}): ${err.slice(-2000)}`));
    });
  });
}

async function up(opts: { leaseSeconds?: number } = {}): Promise<System> {
  const m = shapingMechanism();
  if (m === 'none')
    log(
      'this kernel has no sch_netem (tc netem) and iptables or python3 is missing: links are NOT delayed and loss is not simulated; partitions and kills still are',
    );
  else if (m === 'nfqueue')
    log(
      'no sch_netem in this kernel: loss by iptables (statistic match), delay by NFQUEUE to scripts/cluster/nfqueue-delay.py on each host (a userspace hop per packet, its CPU reported)',
    );
  log(
    `building ${t.workers.length + 4} hosts, links delayed ${shape.delayMs} ms each way, loss ${shape.lossPct} %`,
  );
  build(t, shape);
  await shapingReady();
  system = await startSystem(t, opts);
  await onClient(t.client, { cmd: 'wait-healthy', apiUrls: system.apiUrls });
  log(
    `up: Postgres ${t.pg.ip}:5432, APIs ${system.apiUrls.join(' ')}, workers ${t.workers.map((w) => w.ip).join(' ')}; logs in ${system.dir}`,
  );
  return system;
}

interface Measured {
  processesPerSecond: number;
  stepsPerSecond: number;
  statementsPerProcess: Record<string, number>;
  childrenPerSecond: number;
  firstStepP50: number;
  firstStepP99: number;
  completedP50: number;
  /** The packet delayers during the throughput run (mechanism nfqueue). */
  delayers: { cpuSeconds: number; wallSeconds: number; packets: number; meanLatenessUs: number };
}

function sumStats(all: Record<string, DelayerStats>) {
  const v = Object.values(all);
  return {
    cpu: v.reduce((a, s) => a + s.cpuSeconds, 0),
    packets: v.reduce((a, s) => a + s.packets, 0),
    lateness: v.reduce((a, s) => a + s.latenessSumUs, 0),
  };
}

async function measure(s: System, o: { processes: number; children: number }): Promise<Measured> {
  const api = s.apiUrls[0]!;
  await onClient(t.client, { cmd: 'statements-reset', dbUrl: s.dbUrl });
  const before = sumStats(await delayerStats());
  const t0 = Date.now();
  const tp = await onClient<{ processesPerSecond: number; stepsPerSecond: number }>(t.client, {
    cmd: 'throughput',
    dbUrl: s.dbUrl,
    apiUrl: api,
    processes: o.processes,
  });
  const wallSeconds = (Date.now() - t0) / 1000;
  const after = sumStats(await delayerStats());
  const packets = after.packets - before.packets;
  const delayers = {
    cpuSeconds: after.cpu - before.cpu,
    wallSeconds,
    packets,
    meanLatenessUs: packets ? (after.lateness - before.lateness) / packets : 0,
  };
  const stm = await onClient<Record<string, { calls: number }>>(t.client, {
    cmd: 'statements',
    dbUrl: s.dbUrl,
  });
  const fan = await onClient<{ childrenPerSecond: number }>(t.client, {
    cmd: 'fanout',
    dbUrl: s.dbUrl,
    apiUrl: api,
    children: o.children,
    watch: { api: s.apis[0]!.pid, workers: s.workers.map((w) => w.pid) },
  });
  const lat = await onClient<{
    firstStep: { p50: { median: number }; p99: { median: number } };
    completed: { p50: { median: number } };
  }>(t.client, { cmd: 'latency', dbUrl: s.dbUrl, apiUrl: api, count: 100 });
  const per = (role: string) => (stm[role]?.calls ?? 0) / o.processes;
  return {
    processesPerSecond: tp.processesPerSecond,
    stepsPerSecond: tp.stepsPerSecond,
    statementsPerProcess: {
      api: per('keelson_api'),
      workers: per('keelson_worker'),
      bench: per('postgres'),
    },
    childrenPerSecond: fan.childrenPerSecond,
    firstStepP50: lat.firstStep.p50.median,
    firstStepP99: lat.firstStep.p99.median,
    completedP50: lat.completed.p50.median,
    delayers,
  };
}

async function bench(): Promise<void> {
  const quick = args.profile === 'short';
  const o = {
    processes: Number(args.processes ?? (quick ? 1_000 : 5_000)),
    children: Number(args.children ?? (quick ? 1_000 : 10_000)),
  };
  const s = await up();
  log(
    `bench: ${o.processes} noop processes, a fan-out of ${o.children}, 100 latency samples; no delay first`,
  );
  shapeAll(t, { delayMs: 0, lossPct: 0 });
  // A first run warms the processes up (JIT, pools, caches): otherwise the first column pays it.
  await onClient(t.client, {
    cmd: 'throughput',
    dbUrl: s.dbUrl,
    apiUrl: s.apiUrls[0]!,
    processes: Math.min(500, o.processes),
  });
  const flat = await measure(s, o);
  const m = shapingMechanism();
  if (m === 'none') {
    process.stdout.write(
      `\nno delay (veth links; no sch_netem nor iptables here: the ${2 * shape.delayMs} ms RTT half cannot be measured):\n${JSON.stringify(flat, null, 2)}\n`,
    );
    return;
  }
  // With nfqueue every packet takes a userspace hop: the same hop with no delay separates its cost
  // from the delay's.
  let hop: Measured | undefined;
  if (m === 'nfqueue') {
    log('then every packet through the delayers, 0 ms');
    shapeAll(t, { delayMs: 0.000001, lossPct: 0 });
    hop = await measure(s, o);
  }
  log(`then links delayed ${shape.delayMs} ms each way (${m})`);
  shapeAll(t, shape);
  const rtt = await measure(s, o);
  const rttMs = 2 * shape.delayMs;
  const cols = hop ? [flat, hop, rtt] : [flat, rtt];
  const rows: [string, (x: Measured) => number][] = [
    ['REST throughput, worker mode (processes/s)', (x) => x.processesPerSecond],
    ['the same, committed steps/s', (x) => x.stepsPerSecond],
    [`fan-out of ${o.children} (children/s)`, (x) => x.childrenPerSecond],
    ['POST → first step committed, p50 (ms)', (x) => x.firstStepP50],
    ['POST → first step committed, p99 (ms)', (x) => x.firstStepP99],
    ['POST → completed, p50 (ms)', (x) => x.completedP50],
    ['statements per process, API', (x) => x.statementsPerProcess.api!],
    ['statements per process, workers', (x) => x.statementsPerProcess.workers!],
    ['statements per process, the bench (client)', (x) => x.statementsPerProcess.bench!],
  ];
  if (hop)
    rows.push(
      ['delayers: packets per process (throughput run)', (x) => x.delayers.packets / o.processes],
      [
        'delayers: CPU, % of one core (throughput run)',
        (x) => (100 * x.delayers.cpuSeconds) / x.delayers.wallSeconds,
      ],
      ['delayers: mean lateness past due (µs)', (x) => x.delayers.meanLatenessUs],
    );
  const f = (v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2));
  const head = hop ? '| no delay | nfqueue hop, 0 ms |' : '| no delay |';
  process.stdout.write(
    `\n| figure ${head} ${rttMs} ms RTT (${m}) | ratio to no delay |\n|---${'|---'.repeat(cols.length + 1)}|\n`,
  );
  for (const [label, get] of rows) {
    const v = cols.map(get);
    const ratio =
      v[0] && !label.startsWith('delayers') ? `${(v[v.length - 1]! / v[0]).toFixed(2)}×` : '';
    process.stdout.write(`| ${label} | ${v.map(f).join(' | ')} | ${ratio} |\n`);
  }
  // A process's statements on its critical path, one round trip each: a bound of its time on the wire.
  const perProcess = rtt.statementsPerProcess.api! + rtt.statementsPerProcess.workers!;
  const added = rtt.completedP50 - flat.completedP50;
  process.stdout.write(
    `\nwaiting on the network: round trips per process (API + workers) ${perProcess.toFixed(1)}; at ${rttMs} ms each ` +
      `${(perProcess * rttMs).toFixed(1)} ms of a process's POST → completed p50 of ${rtt.completedP50.toFixed(1)} ms ` +
      `(${Math.min(100, (100 * perProcess * rttMs) / rtt.completedP50).toFixed(0)} %) if none overlapped; measured: ` +
      `the delay added ${added.toFixed(1)} ms to that p50 (${((100 * added) / rtt.completedP50).toFixed(0)} % of it)` +
      (hop
        ? `, of which the nfqueue hop alone ${(hop.completedP50 - flat.completedP50).toFixed(1)} ms`
        : '') +
      `\ntargets: throughput ≥ 0.8× of no delay: ${(rtt.processesPerSecond / flat.processesPerSecond).toFixed(2)}×` +
      (hop
        ? ` (${(rtt.processesPerSecond / hop.processesPerSecond).toFixed(2)}× of the 0 ms hop, the delay's share alone)`
        : '') +
      `; POST → first step p50 ≤ 10 ms: ${rtt.firstStepP50.toFixed(1)} ms\n`,
  );
}

async function main(): Promise<void> {
  if (action === 'up') {
    const s = await up();
    log(
      `running; ip netns exec ${t.client.ns} curl ${s.apiUrls[0]}/api/health — Ctrl-C tears it down`,
    );
    await new Promise(() => {});
  } else if (action === 'bench') await bench();
  else if (action === 'chaos') {
    const profile = args.profile === 'full' ? 'full' : 'short';
    const leaseSeconds = 10;
    const s = await up({ leaseSeconds });
    const ok = await runChaos({
      t,
      s,
      shape,
      profile,
      leaseSeconds,
      onClient: (c) => onClient(t.client, c),
      log,
    });
    process.exitCode = ok ? 0 : 1;
  }
  await system?.stop();
}

export type { Topology };
main().then(
  () => {
    cleanup();
    process.exit(process.exitCode ?? 0);
  },
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    cleanup();
    process.exit(1);
  },
);

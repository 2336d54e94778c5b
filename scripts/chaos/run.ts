// `npm run chaos`: runs the real API and workers against a real Postgres, injects faults while a
// mixed load runs, then checks the durability invariants over the database.
//   --profile short|full   (default full; short is what CI runs)
//   --out FILE             JSON report (default chaos-report.json)
//   --phases LIST          worker,threadpool (default both, in that order)
//   --server SPEC          embedded (default), stock (Debian's postgresql-15, stock settings),
//                          stock:MAJOR or embedded:MAJOR (scripts/test-server.sh)
//   --cluster              the network's faults on simulated hosts instead (scripts/cluster/chaos.ts,
//                          `npm run cluster -- chaos`; needs root and iproute2)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { checkInvariants, type Violation } from '../../src/db/testkit/invariants.ts';
import { CALLBACK_TIMED_OUT } from '../../src/db/callbacks.ts';
import { loadRegistry } from '../../src/engine/registry.ts';
import { freePort } from '../support/ports.ts';
import { OwnCluster } from '../support/cluster.ts';
import { parseServerSpec } from '../support/test-server.ts';
import { checkChildren } from './children.ts';
import { root, Service } from './cluster.ts';
import { FAULTS, type FaultContext, type FaultKind } from './faults.ts';
import { createLoad } from './load.ts';
import { createLocker } from './locks.ts';
import { measureRecovery } from './recovery.ts';
import { checkRepairs } from './repairs.ts';
import { checkSchedule, SCHEDULE_NAME, type Timeline } from './schedules.ts';
import { checkStepKinds, OVERTIME_REASON } from './step-kinds.ts';

const PROFILES = {
  short: {
    workerProcesses: 1_500,
    threadpoolProcesses: 300,
    faultEveryMs: 1_500,
    faultRounds: 1,
    drainTimeoutMs: 180_000,
    /** Least seconds of each phase (faults keep coming meanwhile), for the schedule's ticks. */
    minPhaseSeconds: { worker: 50, threadpool: 40 },
  },
  full: {
    workerProcesses: 20_000,
    threadpoolProcesses: 2_000,
    faultEveryMs: 3_000,
    faultRounds: 3,
    drainTimeoutMs: 600_000,
    minPhaseSeconds: { worker: 150, threadpool: 120 },
  },
} as const;

const WORKER_FAULTS: FaultKind[] = [
  'kill9_worker',
  'concurrent_resume_abort',
  'kill9_api',
  'sigterm_worker',
  'terminate_backends',
  'pause',
  'postgres_restart',
  'listen_cut',
  'sigstop_worker',
  'lost_client',
];
const THREADPOOL_FAULTS: FaultKind[] = [
  'kill9_api',
  'concurrent_resume_abort',
  'pause',
  'terminate_backends',
  'postgres_restart',
  'lost_client',
];

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: 'full' },
    out: { type: 'string', default: 'chaos-report.json' },
    phases: { type: 'string', default: 'worker,threadpool' },
    /** embedded (default), stock (Debian's postgresql-15), stock:MAJOR or embedded:MAJOR. */
    server: { type: 'string', default: 'embedded' },
    cluster: { type: 'boolean', default: false },
  },
});
if (args.cluster) {
  const { spawnSync } = await import('node:child_process');
  const script = path.join(import.meta.dirname, '..', 'cluster', 'run.ts');
  const profile = args.profile === 'full' ? 'full' : 'short';
  const r = spawnSync(process.execPath, [script, 'chaos', '--profile', profile], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
try {
  parseServerSpec(args.server!);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const profileName = args.profile as keyof typeof PROFILES;
const profile = PROFILES[profileName];
if (!profile) {
  console.error(`unknown profile ${args.profile}: use short or full`);
  process.exit(2);
}

const phases = new Set(args.phases!.split(',').map((p) => p.trim()));
for (const p of phases) {
  if (p !== 'worker' && p !== 'threadpool') {
    console.error(`unknown phase ${p}: use worker and/or threadpool`);
    process.exit(2);
  }
}

const LEASE_SECONDS = 3;
const log = (msg: string) =>
  console.log(`[chaos ${new Date().toISOString().slice(11, 23)}] ${msg}`);
const workflowsDir = path.join(root, 'scripts', 'chaos', 'workflows');
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-'));
const execLog = path.join(workDir, 'executions.log');
Service.logDir = workDir;
const started = Date.now();

// The embedded server gets room for the load's connections; another server keeps its own
// configuration (Debian's: max_connections 100).
const db = new OwnCluster({
  name: 'chaos',
  flags: ['-c', 'max_connections=300'],
  server: args.server,
});
await db.start();
log(`database: ${db.describe}`);
const pool = new pg.Pool({ connectionString: db.url, max: 4, application_name: 'chaos' });
pool.on('error', () => {});
// Two API instances on the database, both taking load (and both running the cron pass).
const apiPorts = [await freePort(), await freePort()];
const env = () => ({
  DATABASE_URL: db.url,
  LEASE_SECONDS: String(LEASE_SECONDS),
  WORKFLOWS_DIR: workflowsDir,
  CHAOS_EXEC_LOG: execLog,
  LOG_LEVEL: 'info',
});
let apis: Service[] = [];
const load = createLoad(() =>
  apis.flatMap((a, i) => (a.running ? [`http://127.0.0.1:${apiPorts[i]}`] : [])),
);
const locker = createLocker(pool, load);
const faultViolations: Violation[] = [];
const allApis: Service[] = [];
const timeline: Timeline = {
  apiUptime: () => allApis.map((a) => a.uptime),
  dbDown: [],
  pauses: [],
};
/** The schedule under test: created once the first APIs are up, deleted before the last stop. */
const schedule = { createdAt: 0, deletedAt: 0 };
const apiService = (name: string, i: number, extra: Record<string, string>) => {
  const s = new Service(
    `${name}-${i + 1}`,
    'src/cli/serve.ts',
    [],
    () => ({ ...env(), ...extra, PORT: String(apiPorts[i]) }),
    /orchestrator listening/,
  );
  allApis.push(s);
  return s;
};

/** Retries `req` until it answers one of `ok` (the API may be down for a moment). */
async function until(
  what: string,
  ok: number[],
  req: () => Promise<Response | undefined>,
): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await req();
    await r?.body?.cancel();
    if (r && ok.includes(r.status)) return;
    await sleep(200);
  }
  throw new Error(`${what}: no answer ${ok.join('/')}`);
}

/** Waits (up to `ms`) until no tick of the schedule is left to start. */
async function ticksSettled(ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const { rows } = await pool
      .query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pgboss.job
          WHERE name = 'scheduled_starts' AND state IN ('created', 'retry', 'active')`,
      )
      .catch(() => ({ rows: [{ n: 1 }] }));
    if (rows[0]?.n === 0) return;
    await sleep(500);
  }
  log(`ticks still not started after ${ms} ms`);
}
const faultsInjected: Record<string, number> = {};
/** Faults after which the system did not recover within a minute: each one fails the run. */
const unrecovered: string[] = [];
const recoveries: Record<string, number[]> = {};

async function runPhase(
  name: string,
  phaseApis: Service[],
  workers: Service[],
  processes: number,
  faults: FaultKind[],
  last: boolean,
  minSeconds: number,
): Promise<void> {
  const phaseEnd = Date.now() + minSeconds * 1000;
  log(
    `phase ${name}: starting ${phaseApis.map((a) => a.name).join(' and ')}${workers.length ? ` and ${workers.length} workers` : ''}`,
  );
  await Promise.all(phaseApis.map((a) => a.start()));
  apis = phaseApis;
  await Promise.all(workers.map((w) => w.start()));
  if (!schedule.createdAt) {
    schedule.createdAt = Date.now();
    await until('creating the schedule', [200, 201], () =>
      load.call('POST', '/api/schedules', {
        name: SCHEDULE_NAME,
        workflow: 'noop_task',
        cron: '* * * * *',
      }),
    );
  }
  locker.hold(false);
  const ctx: FaultContext = {
    db,
    pool,
    apis: phaseApis,
    workers,
    load,
    leaseSeconds: LEASE_SECONDS,
    log,
    violations: faultViolations,
    timeline,
  };
  const target = load.stats.started.length + processes;
  let startingDone = false;
  // Starts are paced so that every kind of fault hits a running load `faultRounds` times.
  const rounds = faults.length * profile.faultRounds;
  const perSecond = processes / ((rounds * profile.faultEveryMs) / 1000);
  const starting = load.starter(target, 8, perSecond).then(() => (startingDone = true));
  for (let i = 0; !startingDone || i < rounds || Date.now() < phaseEnd; i++) {
    await sleep(profile.faultEveryMs);
    const kind = faults[i % faults.length]!;
    const recovery = measureRecovery(pool);
    await recovery.snapshot();
    const what = await FAULTS[kind](ctx);
    const ms = await recovery.wait(60_000);
    faultsInjected[kind] = (faultsInjected[kind] ?? 0) + 1;
    if (ms === undefined || Service.crashes.length) {
      if (ms === undefined) unrecovered.push(`${name}: ${kind}`);
      log(`${kind}: ${what}; NOT RECOVERED — stopping the load (logs in ${workDir})`);
      load.stopStarting();
      break;
    }
    (recoveries[kind] ??= []).push(ms);
    log(`${kind}: ${what}; recovered in ${ms} ms (${load.stats.started.length}/${target} started)`);
  }
  await starting;
  // The full profile runs long enough to see several ticks; the phases end at least this late.
  while (Date.now() < phaseEnd && !unrecovered.length) await sleep(500);
  log(`phase ${name}: all ${processes} started; draining`);
  locker.hold(true);
  await drain(unrecovered.length ? 30_000 : profile.drainTimeoutMs);
  if (last) {
    // A tick whose instance was killed while starting it is retried after its job expires (a
    // minute or more): let those start before the schedule goes, or their process never would.
    await ticksSettled(unrecovered.length ? 10_000 : 200_000);
    schedule.deletedAt = Date.now();
    await until('deleting the schedule', [204, 404], () =>
      load.call('DELETE', `/api/schedules/${SCHEDULE_NAME}`),
    );
    await ticksSettled(unrecovered.length ? 10_000 : 200_000);
    await drain(30_000);
  }
  await Promise.all([...workers, ...phaseApis].map((s) => s.kill('SIGTERM')));
}

/**
 * Ended for the load: completed, aborted, or failed because its callback did not come (the load
 * never answers some callbacks; nothing resumes those) or its step ran past its time limit
 * (`overtime`).
 */
const ENDED = `(status IN ('completed', 'aborted') OR (status = 'failed' AND failed_reason IN ($1, '${OVERTIME_REASON}')))`;

/**
 * Waits until nothing is left to run: every process ended (or waits for something the load gives:
 * input, a resume, a callback, or for its retry or its callback's timeout).
 */
async function drain(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM orchestrator.processes WHERE NOT ${ENDED}`,
      [CALLBACK_TIMED_OUT],
    );
    if (rows[0]?.n === 0) return;
    if (Date.now() > deadline) {
      log(`drain timed out with ${rows[0]?.n} processes not ended`);
      return;
    }
    await sleep(250);
  }
}

const exitCode = await (async () => {
  const resuming = load.resumer();
  const answering = load.answerer();
  locker.hold(true);
  const locking = locker.run();
  try {
    const workerApis = [0, 1].map((i) =>
      apiService('api (worker mode)', i, { EXECUTOR: 'worker' }),
    );
    const workers = [1, 2].map(
      (i) =>
        new Service(
          `worker-${i}`,
          'src/cli/worker.ts',
          ['--concurrency', '8'],
          env,
          /worker (ready|started)/i,
        ),
    );
    if (phases.has('worker')) {
      await runPhase(
        'worker mode',
        workerApis,
        workers,
        profile.workerProcesses,
        WORKER_FAULTS,
        !phases.has('threadpool'),
        profile.minPhaseSeconds.worker,
      );
    }
    const tpApis = [0, 1].map((i) => apiService('api (threadpool)', i, {}));
    if (phases.has('threadpool')) {
      await runPhase(
        'threadpool mode',
        tpApis,
        [],
        profile.threadpoolProcesses,
        THREADPOOL_FAULTS,
        true,
        profile.minPhaseSeconds.threadpool,
      );
    }
  } finally {
    load.stop();
    await Promise.all([resuming, answering, locking]);
  }

  const registry = await loadRegistry(workflowsDir);
  const violations: Violation[] = await checkInvariants(pool, {
    registry,
    abandonedAfterSeconds: LEASE_SECONDS * 3,
    checkJobs: true,
  });
  const stepKinds = await checkStepKinds(
    pool,
    load.stats.callbacks,
    LEASE_SECONDS * 3,
    load.stats.resumedByFaults,
  );
  violations.push(...stepKinds.violations);
  const children = await checkChildren(pool, load.stats.parents);
  violations.push(...children.violations);
  const repairs = await checkRepairs(pool, load.stats.repairs);
  violations.push(...repairs.violations);
  await locker.check();
  violations.push(...locker.violations, ...faultViolations);
  const scheduled = await checkSchedule(pool, {
    timeline,
    createdAt: schedule.createdAt,
    deletedAt: schedule.deletedAt || Date.now(),
  });
  violations.push(...scheduled.violations);
  const { rows: statusRows } = await pool.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM orchestrator.processes GROUP BY status`,
  );
  const { rows: known } = await pool.query<{ id: string }>(
    `SELECT id FROM orchestrator.processes WHERE id = ANY($2::uuid[]) AND ${ENDED}`,
    [CALLBACK_TIMED_OUT, load.stats.started],
  );
  const lost = load.stats.started.length - known.length;
  const expectedSteps = await pool.query<{ workflow: string; processes: number; cleared: number }>(
    `SELECT p.workflow_name AS workflow, count(DISTINCT p.id)::int AS processes, count(s.id)::int AS cleared
       FROM orchestrator.processes p
       LEFT JOIN orchestrator.process_steps s ON s.process_id = p.id AND s.status IN ('success', 'skipped', 'complete')
      WHERE p.status = 'completed' GROUP BY p.workflow_name`,
  );
  let expected = 0;
  let committed = 0;
  for (const r of expectedSteps.rows) {
    expected += r.processes * (registry.get(r.workflow)?.steps.length ?? 0);
    committed += r.cleared;
  }
  const executions = fs.existsSync(execLog)
    ? fs.readFileSync(execLog, 'utf8').split('\n').filter(Boolean).length
    : 0;
  const { rows: countedRows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM orchestrator.process_steps s JOIN orchestrator.processes p ON p.id = s.process_id
      WHERE p.workflow_name = 'counted' AND s.status = 'success'`,
  );
  const report = {
    profile: profileName,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    processes: {
      started: load.stats.started.length,
      refusedStarts: load.stats.refused,
      resumes: load.stats.resumes,
      byStatus: Object.fromEntries(statusRows.map((r) => [r.status, r.n])),
      lost,
    },
    steps: { expected, committed },
    faults: faultsInjected,
    recoveryMs: Object.fromEntries(
      Object.entries(recoveries).map(([k, v]) => [
        k,
        { max: Math.max(...v), median: v.sort((a, b) => a - b)[Math.floor(v.length / 2)] },
      ]),
    ),
    stepKinds: stepKinds.summary,
    children: children.summary,
    repairs: repairs.summary,
    schedule: scheduled.summary,
    locks: locker.stats,
    pauses: timeline.pauses.length,
    countedSteps: {
      executions,
      committed: countedRows[0]?.n ?? 0,
      reExecuted: executions - (countedRows[0]?.n ?? 0),
    },
    unrecovered,
    crashes: Service.crashes.map((c) => `${c.name} exited with ${c.code}`),
    logs: workDir,
    invariantViolations: violations.length,
    violations: violations.slice(0, 50),
  };
  fs.writeFileSync(args.out!, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
  const ok =
    violations.length === 0 &&
    lost === 0 &&
    expected === committed &&
    unrecovered.length === 0 &&
    Service.crashes.length === 0;
  for (const c of Service.crashes) log(`${c.name} crashed (${c.code}):\n${c.output}`);
  log(ok ? 'PASS: no invariant violations, no lost processes' : 'FAIL');
  return ok ? 0 : 1;
})().finally(async () => {
  await pool.end();
  await db.destroy();
});
process.exit(exitCode);

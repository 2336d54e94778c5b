// Item 9, fan-out: one task (scripts/bench/workflows/fanout.ts) whose subProcesses step starts N
// three-step `noop` children, in worker mode; from the task's start (its row's `started_at`) to the
// last child's commit (the latest `last_modified_at` of its children), by Postgres's clock:
// children/s and committed steps/s. With a cost probe, the database's work per child (as item 8),
// and where the CPU went: utime + stime from /proc of the API, the workers, Postgres (the
// postmaster with every backend it reaped, and the backends alive) and the benchmark itself.
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startProcess, TimeLimitError } from './client.ts';
import { costBetween, type CostProbe, type RunCost } from './dbcost.ts';
import { cpuSeconds } from './live.ts';
import type { BenchDatabase } from './system.ts';

export interface FanoutRun {
  children: number;
  /** From the task's start to its last child's commit. */
  seconds: number;
  childrenPerSecond: number;
  /** The children's committed steps per second. */
  stepsPerSecond: number;
  /** From the task's start to its own completion (it collects the children's states). */
  parentSeconds: number;
  /** CPU seconds per component over the run (start to the parent's completion). */
  cpu: CpuShares;
  cost?: RunCost;
}

export interface CpuShares {
  postgres: number;
  workers: number;
  api: number;
  bench: number;
}

/** The processes whose CPU a run counts: the API, the workers, the postmaster (by pid). */
export interface CpuWatch {
  api: number | undefined;
  workers: (number | undefined)[];
  postmaster: number | undefined;
}

function statFields(pid: number): string[] | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a Postgres server so far: the postmaster's own and its reaped children's
 * (cutime, cstime: backends that exited), plus every live child's. A backend that exits between
 * two readings moves from the second sum to the first: counted once either way.
 */
export function postgresCpuSeconds(postmaster: number | undefined): number {
  if (postmaster === undefined) return Number.NaN;
  const own = statFields(postmaster);
  if (!own) return Number.NaN;
  // utime, stime, cutime, cstime: fields 14–17 of stat(5).
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    // Field 4, ppid.
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

/** The postmaster of the server `client` is connected to (when it runs on this machine). */
export async function postmasterPid(client: pg.Client): Promise<number | undefined> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const f = statFields(rows[0]!.pid);
  return f ? Number(f[1]) : undefined;
}

function readCpu(w: CpuWatch): CpuShares {
  const own = process.cpuUsage();
  return {
    postgres: postgresCpuSeconds(w.postmaster),
    workers: w.workers.reduce<number>((s, pid) => s + cpuSeconds(pid), 0),
    api: cpuSeconds(w.api),
    bench: (own.user + own.system) / 1e6,
  };
}

/** One fan-out run of `children` children through the API at `apiUrl` (worker mode). */
export async function measureFanout(
  db: BenchDatabase,
  apiUrl: string,
  opts: { children: number; watch: CpuWatch; cost?: CostProbe; timeoutMs?: number },
): Promise<FanoutRun> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const probe = opts.cost;
  const client = probe?.client ?? new pg.Client({ connectionString: db.url });
  if (!probe) await client.connect();
  try {
    await db.reset(client);
    const before = await probe?.read();
    const windowStart = Date.now();
    const cpuBefore = readCpu(opts.watch);
    const deadline = Date.now() + timeoutMs;
    const parent = await startProcess(apiUrl, 'fanout', { count: opts.children });
    // Polls by the parent's index; a child that ended other than completed fails the run.
    let childrenDone: { seconds: number } | undefined;
    let parentSeconds = Number.NaN;
    for (;;) {
      const { rows } = await client.query<{
        done: number;
        bad: number;
        last: number | null;
        parentStatus: string;
        parentSeconds: number;
      }>(
        `SELECT c.done, c.bad,
                extract(epoch FROM c.last - p.started_at)::float AS last,
                p.status AS "parentStatus",
                extract(epoch FROM p.last_modified_at - p.started_at)::float AS "parentSeconds"
           FROM orchestrator.processes p,
                LATERAL (SELECT count(*) FILTER (WHERE status = 'completed')::int AS done,
                                count(*) FILTER (WHERE status NOT IN
                                  ('completed', 'created', 'running', 'resumed'))::int AS bad,
                                max(last_modified_at) AS last
                           FROM orchestrator.processes WHERE parent_id = p.id) c
          WHERE p.id = $1`,
        [parent],
      );
      const r = rows[0];
      if (!r) throw new Error('the fan-out task is gone');
      if (r.bad > 0) throw new Error(`${r.bad} children ended other than completed`);
      if (['failed', 'aborted', 'inconsistent_data', 'api_unavailable'].includes(r.parentStatus))
        throw new Error(`the fan-out task ended ${r.parentStatus}`);
      if (!childrenDone && r.done >= opts.children) childrenDone = { seconds: r.last ?? NaN };
      if (childrenDone && r.parentStatus === 'completed') {
        parentSeconds = r.parentSeconds;
        break;
      }
      if (Date.now() > deadline)
        throw new TimeLimitError(
          `fan-out: ${r.done}/${opts.children} children completed in ${timeoutMs / 1000} s`,
        );
      await sleep(100);
    }
    const cpuAfter = readCpu(opts.watch);
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM orchestrator.process_steps s
         JOIN orchestrator.processes p ON p.id = s.process_id
        WHERE p.parent_id = $1 AND s.status = 'success'`,
      [parent],
    );
    const seconds = childrenDone.seconds;
    const run: FanoutRun = {
      children: opts.children,
      seconds,
      childrenPerSecond: opts.children / seconds,
      stepsPerSecond: (rows[0]?.n ?? 0) / seconds,
      parentSeconds,
      cpu: {
        postgres: cpuAfter.postgres - cpuBefore.postgres,
        workers: cpuAfter.workers - cpuBefore.workers,
        api: cpuAfter.api - cpuBefore.api,
        bench: cpuAfter.bench - cpuBefore.bench,
      },
    };
    if (probe && before) {
      const settleMs = await probe.settle(windowStart, Date.now());
      run.cost = costBetween(before, await probe.read(), settleMs);
    }
    return run;
  } finally {
    if (!probe) await client.end();
  }
}

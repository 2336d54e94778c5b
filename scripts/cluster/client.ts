// The client host's side of `npm run cluster`: run in the client's namespace by scripts/cluster/
// run.ts with one JSON argument, prints one JSON line with the result. What it measures is the
// bench's own code (scripts/bench/throughput.ts, fanout.ts, latency.ts) over the simulated network.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { checkInvariants } from '../../src/db/testkit/invariants.ts';
import { loadRegistry } from '../../src/engine/registry.ts';
import { startProcess } from '../bench/client.ts';
import { measureFanout, postmasterPid, type CpuWatch } from '../bench/fanout.ts';
import { measureLatency } from '../bench/latency.ts';
import { summarizeLatency } from '../bench/stats.ts';
import { emptyTables, type BenchDatabase } from '../bench/system.ts';
import { measureThroughput } from '../bench/throughput.ts';

type Command =
  | { cmd: 'wait-healthy'; apiUrls: string[] }
  | { cmd: 'throughput'; dbUrl: string; apiUrl: string; processes: number }
  | { cmd: 'fanout'; dbUrl: string; apiUrl: string; children: number; watch: CpuWatch }
  | { cmd: 'latency'; dbUrl: string; apiUrl: string; count: number }
  | { cmd: 'statements-reset'; dbUrl: string }
  | { cmd: 'statements'; dbUrl: string }
  | { cmd: 'load'; apiUrls: string[]; processes: number; children: number; seconds: number }
  | { cmd: 'drain'; dbUrl: string; timeoutMs: number }
  | { cmd: 'check'; dbUrl: string; leaseSeconds: number; workflowsDir: string };

const command = JSON.parse(process.argv[2]!) as Command;

function benchDatabase(url: string): BenchDatabase {
  return {
    url,
    describe: 'cluster',
    async reset(client?: pg.Client) {
      const c = client ?? new pg.Client({ connectionString: url });
      if (!client) await c.connect();
      try {
        await emptyTables(c, 'orchestrator.processes, pgboss.job');
      } finally {
        if (!client) await c.end();
      }
    },
    close: async () => {},
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function main(): Promise<unknown> {
  switch (command.cmd) {
    case 'wait-healthy': {
      const deadline = Date.now() + 60_000;
      for (const u of command.apiUrls)
        while (
          !(await fetch(`${u}/api/health`).then(
            (r) => r.ok,
            () => false,
          ))
        ) {
          if (Date.now() > deadline) throw new Error(`${u} not healthy in 60 s`);
          await sleep(100);
        }
      return { ok: true };
    }
    case 'throughput':
      return measureThroughput(benchDatabase(command.dbUrl), command.apiUrl, {
        processes: command.processes,
        stateBytes: 0,
      });
    case 'fanout': {
      const postmaster = await withClient(command.dbUrl, postmasterPid);
      return measureFanout(benchDatabase(command.dbUrl), command.apiUrl, {
        children: command.children,
        watch: { ...command.watch, postmaster },
      });
    }
    case 'latency': {
      await benchDatabase(command.dbUrl).reset();
      const r = await measureLatency(command.dbUrl, command.apiUrl, {
        count: command.count,
        runs: 1,
      });
      return { firstStep: summarizeLatency(r.firstStep), completed: summarizeLatency(r.completed) };
    }
    case 'statements-reset':
      return withClient(command.dbUrl, (c) => c.query('SELECT pg_stat_statements_reset()'));
    case 'statements':
      return withClient(command.dbUrl, async (c) => {
        const { rows } = await c.query<{ role: string; calls: string; ms: number }>(
          `SELECT r.rolname AS role, sum(s.calls)::bigint AS calls, sum(s.total_exec_time)::float AS ms
             FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
            WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            GROUP BY r.rolname`,
        );
        return Object.fromEntries(rows.map((r) => [r.role, { calls: Number(r.calls), ms: r.ms }]));
      });
    case 'load':
      return load(command);
    case 'drain':
      return withClient(command.dbUrl, async (c) => {
        const deadline = Date.now() + command.timeoutMs;
        for (;;) {
          const { rows } = await c.query<{ going: number; total: number }>(
            `SELECT count(*) FILTER (WHERE status NOT IN ('completed', 'aborted', 'failed'))::int AS going,
                    count(*)::int AS total FROM orchestrator.processes`,
          );
          const r = rows[0]!;
          if (r.going === 0) return { ...r, drained: true };
          if (Date.now() > deadline) return { ...r, drained: false };
          await sleep(500);
        }
      });
    case 'check':
      return withClient(command.dbUrl, async (c) => {
        const registry = await loadRegistry(command.workflowsDir);
        const violations = await checkInvariants(c, {
          registry,
          leaseSeconds: command.leaseSeconds,
          abandonedAfterSeconds: command.leaseSeconds * 3,
          checkJobs: true,
        });
        const { rows } = await c.query<{ status: string; n: number }>(
          `SELECT status, count(*)::int AS n FROM orchestrator.processes GROUP BY status`,
        );
        return { violations, statuses: Object.fromEntries(rows.map((r) => [r.status, r.n])) };
      });
  }
}

/**
 * Starts noop processes (and one fan-out) for `seconds`, each POST to one API and, when it fails
 * or times out (its host partitioned), to the other: what a client with two API addresses does.
 * Counts starts acknowledged, and those that needed the other API.
 */
async function load(c: Extract<Command, { cmd: 'load' }>) {
  const stats = { started: 0, failedOver: 0, failed: 0, fanout: '' };
  const post = async (workflow: string, body: unknown, first: number): Promise<string> => {
    for (let i = 0; i < c.apiUrls.length * 3; i++) {
      const u = c.apiUrls[(first + i) % c.apiUrls.length]!;
      try {
        const id = await startProcess(u, workflow, body, AbortSignal.timeout(3_000));
        if (i > 0) stats.failedOver++;
        return id;
      } catch {
        await sleep(100);
      }
    }
    throw new Error('no API answered');
  };
  if (c.children > 0) stats.fanout = await post('fanout', { count: c.children }, 0);
  const deadline = Date.now() + c.seconds * 1000;
  let n = 0;
  const perSecond = c.processes / c.seconds;
  await Promise.all(
    Array.from({ length: 8 }, async (_, lane) => {
      while (Date.now() < deadline && n < c.processes) {
        n++;
        const at = performance.now();
        try {
          await post('noop', {}, lane);
          stats.started++;
        } catch {
          stats.failed++;
        }
        // An even rate over the whole time, so faults meet a running load.
        await sleep(Math.max(0, (8 * 1000) / perSecond - (performance.now() - at)));
      }
    }),
  );
  return stats;
}

main().then(
  (r) => {
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

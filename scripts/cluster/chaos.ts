// The chaos suite's `--cluster` profile: the faults a network brings, under load, on the simulated
// hosts (scripts/cluster/net.ts), then the durability invariants (src/db/testkit/invariants.ts):
//   1. a worker host partitioned from Postgres longer than a lease, then healed: its processes are
//      taken over after their leases expire, and its late commits are refused (fenced);
//   2. an API host partitioned while the clients keep calling the other;
//   3. 1 % packet loss on every link (each way) for 10 s;
//   4. kill -9 of a worker host's processes (restarted after 2 s).
// Passes with 0 violations, every process ended, and nothing left running past two leases.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Violation } from '../../src/db/testkit/invariants.ts';
import {
  droppedPackets,
  heal,
  partition,
  shapeAll,
  shapingMechanism,
  type Shape,
  type Topology,
} from './net.ts';
import { benchWorkflows, type System } from './system.ts';

export interface ChaosOptions {
  t: Topology;
  s: System;
  shape: Shape;
  profile: 'short' | 'full';
  leaseSeconds: number;
  onClient: <T>(command: Record<string, unknown>) => Promise<T>;
  log: (msg: string) => void;
}

const PROFILES = {
  short: { processes: 1_500, children: 500, seconds: 70 },
  full: { processes: 10_000, children: 5_000, seconds: 240 },
} as const;

export async function runChaos(o: ChaosOptions): Promise<boolean> {
  const { t, s, log, leaseSeconds } = o;
  const p = PROFILES[o.profile];
  const started = Date.now();
  const at = (sec: number) => sleep(Math.max(0, started + sec * 1000 - Date.now()));
  log(
    `chaos (${o.profile}): ${p.processes} noop processes over ${p.seconds} s and a fan-out of ${p.children}, lease ${leaseSeconds} s`,
  );
  const load = o.onClient<{ started: number; failedOver: number; failed: number; fanout: string }>({
    cmd: 'load',
    apiUrls: s.apiUrls,
    processes: p.processes,
    children: p.children,
    seconds: p.seconds,
  });
  const w1 = t.workers[0]!;
  const w1Proc = s.workers[0]!;
  const lostBefore = w1Proc.count(/lease lost/);
  const faults = (async () => {
    await at(5);
    const cut = Math.round(leaseSeconds * 1.5);
    log(`fault: ${w1.name} partitioned from Postgres for ${cut} s (lease ${leaseSeconds} s)`);
    partition(w1, [t.pg]);
    await sleep(cut * 1000);
    heal(w1, [t.pg]);
    log(`healed ${w1.name}`);
    await at(5 + cut + 5);
    const api1 = t.apis[0]!;
    log(`fault: ${api1.name} partitioned for 8 s; clients call ${t.apis[1]!.name}`);
    const everyone = [t.pg, t.apis[1]!, ...t.workers, t.client];
    partition(api1, everyone);
    await sleep(8_000);
    heal(api1, everyone);
    log(`healed ${api1.name}`);
    await sleep(3_000);
    if (shapingMechanism() !== 'none') {
      log(`fault: 1 % loss on every link for 10 s (${shapingMechanism()}), links still delayed`);
      shapeAll(t, { ...o.shape, lossPct: 1 });
      await sleep(10_000);
      log(`${droppedPackets(t)} packets dropped`);
      shapeAll(t, o.shape);
    } else log('fault skipped: 1 % loss needs sch_netem or iptables, neither here');
    const w2 = s.workers[1]!;
    log(`fault: kill -9 of ${w2.host.name}'s processes, restarted after 2 s`);
    w2.kill('SIGKILL');
    await sleep(2_000);
    await w2.start();
    log(`${w2.host.name} back`);
  })();
  const [stats] = await Promise.all([load, faults]);
  log(
    `load done: ${stats.started} started (${stats.failedOver} through the other API), ${stats.failed} not started`,
  );
  const drainStart = Date.now();
  const drain = await o.onClient<{ going: number; total: number; drained: boolean }>({
    cmd: 'drain',
    dbUrl: s.dbUrl,
    timeoutMs: 180_000,
  });
  const drainSeconds = (Date.now() - drainStart) / 1000;
  const check = await o.onClient<{ violations: Violation[]; statuses: Record<string, number> }>({
    cmd: 'check',
    dbUrl: s.dbUrl,
    leaseSeconds,
    workflowsDir: benchWorkflows,
  });
  const refused = w1Proc.count(/lease lost/) - lostBefore;
  const expected = stats.started + (stats.fanout ? 1 + p.children : 0);
  log(
    `drained in ${drainSeconds.toFixed(1)} s after the load: ${drain.total} processes (${expected} acknowledged), ` +
      `${drain.going} not ended; statuses ${JSON.stringify(check.statuses)}`,
  );
  log(`${w1.name}'s commits refused after its partition (lease lost): ${refused}`);
  for (const v of check.violations.slice(0, 20))
    log(`violation: ${v.invariant} ${v.processId}: ${v.detail}`);
  const ok =
    check.violations.length === 0 &&
    drain.drained &&
    drain.total >= expected &&
    (check.statuses.completed ?? 0) === drain.total &&
    stats.failed === 0;
  log(
    `${ok ? 'PASSED' : 'FAILED'}: ${check.violations.length} violations in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return ok;
}

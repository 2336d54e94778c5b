// A schedule under fault: `noop_task` every minute (pg-boss files at most one tick a minute), with
// two API instances running the cron pass and fetching ticks while they are killed and Postgres
// restarts. At the end, against pg-boss's jobs of the tick queue and the processes they started:
// at most one tick and one process per minute, every process one tick's (its id is the tick's
// job id) and ended; no tick lost for a minute during which an API instance was up with the
// database; a tick that started nothing is one refused while the engine was paused (or one
// consumed after the schedule was deleted at the end).
import type pg from 'pg';
import type { Violation } from '../../src/db/testkit/invariants.ts';
import { SCHEDULE_QUEUE } from '../../src/executors/boss.ts';

export const SCHEDULE_NAME = 'chaos_tick';

/** Intervals in ms since the epoch; `to` unset: still going. */
export interface Interval {
  from: number;
  to?: number;
}

export interface Timeline {
  /** When each API instance was up (one list per instance). */
  apiUptime: () => Interval[][];
  /** Postgres stopped (restarts). */
  dbDown: Interval[];
  /** The global lock set (from before the PUT that set it to after the PUT that cleared it). */
  pauses: Interval[];
}

/** Least time, within a minute's due window, with an API instance and the database up. */
const MIN_COVERAGE_MS = 15_000;
/** A tick refused while paused completes its job just after the pause; this much later counts. */
const PAUSE_SLACK_MS = 5_000;
const MINUTE = 60_000;

interface TickRow {
  id: string;
  state: string;
  slot: Date;
  createdOn: Date;
  completedOn: Date | null;
  retries: number;
  processId: string | null;
  status: string | null;
  createdBy: string | null;
}

/** ms of [from, to) during which some API was up and the database not down. */
function coverage(t: Timeline, from: number, to: number, now: number): number {
  const marks = new Set<number>([from, to]);
  const all = [...t.apiUptime().flat(), ...t.dbDown];
  for (const i of all) {
    for (const x of [i.from, i.to ?? now]) if (x > from && x < to) marks.add(x);
  }
  const points = [...marks].sort((a, b) => a - b);
  const within = (xs: Interval[], x: number) => xs.some((i) => i.from <= x && x < (i.to ?? now));
  let ms = 0;
  for (let k = 0; k + 1 < points.length; k++) {
    const mid = (points[k]! + points[k + 1]!) / 2;
    if (t.apiUptime().some((u) => within(u, mid)) && !within(t.dbDown, mid))
      ms += points[k + 1]! - points[k]!;
  }
  return ms;
}

export async function checkSchedule(
  pool: pg.Pool,
  o: { timeline: Timeline; createdAt: number; deletedAt: number },
) {
  const violations: Violation[] = [];
  const bad = (invariant: string, processId: string, detail: string) =>
    violations.push({ invariant, processId, detail });
  const now = Date.now();
  const { rows: ticks } = await pool.query<TickRow>(
    `SELECT j.id, j.state, coalesce(j.singleton_on AT TIME ZONE 'UTC', date_trunc('minute', j.created_on)) AS slot,
            j.created_on AS "createdOn", j.completed_on AS "completedOn", j.retry_count AS retries,
            p.id AS "processId", p.status, p.created_by AS "createdBy"
       FROM pgboss.job j LEFT JOIN orchestrator.processes p ON p.id = j.id
      WHERE j.name = $1 AND j.data->>'schedule' = $2 ORDER BY j.created_on`,
    [SCHEDULE_QUEUE, SCHEDULE_NAME],
  );
  const { rows: orphans } = await pool.query<{ id: string }>(
    `SELECT p.id FROM orchestrator.processes p
      WHERE p.schedule_name = $2
        AND NOT EXISTS (SELECT 1 FROM pgboss.job j WHERE j.name = $1 AND j.id = p.id)`,
    [SCHEDULE_QUEUE, SCHEDULE_NAME],
  );
  for (const r of orphans) bad('one process per tick', r.id, 'a scheduled process of no tick');

  const bySlot = new Map<number, TickRow[]>();
  for (const t of ticks) {
    const k = t.slot.getTime();
    bySlot.set(k, [...(bySlot.get(k) ?? []), t]);
  }
  for (const [slot, ts] of bySlot) {
    if (ts.length > 1)
      bad(
        'one tick per minute',
        ts[0]!.processId ?? ts[0]!.id,
        `${ts.length} ticks for ${new Date(slot).toISOString()}`,
      );
  }
  const skipped = { paused: 0, deleted: 0 };
  const pausedAt = (ms: number) =>
    o.timeline.pauses.some((p) => p.from <= ms && ms <= (p.to ?? now) + PAUSE_SLACK_MS);
  for (const t of ticks) {
    const minute = t.slot.toISOString().slice(11, 16);
    if (t.state !== 'completed') {
      bad('tick started', t.id, `tick of ${minute} left ${t.state} (${t.retries} retries)`);
    } else if (!t.processId) {
      const done = t.completedOn!.getTime();
      if (pausedAt(done)) skipped.paused++;
      else if (done >= o.deletedAt && t.slot.getTime() + MINUTE > o.deletedAt - 10_000)
        skipped.deleted++;
      else
        bad(
          'tick started',
          t.id,
          `tick of ${minute} completed at ${t.completedOn!.toISOString()} without a process`,
        );
    } else {
      if (t.createdBy !== `schedule:${SCHEDULE_NAME}`)
        bad('one process per tick', t.processId, `created by ${t.createdBy}`);
      if (t.status !== 'completed')
        bad('scheduled process ended', t.processId, `tick of ${minute}: ${t.status}`);
    }
  }

  // Minutes after the schedule's creation whose due window ([M, M + 60 s): pg-boss sends an
  // occurrence while it is less than a minute old, at its first cron pass, every 5 s on each
  // instance) had enough of it, before the deletion, with an API instance and the database up.
  const minutes: { minute: string; coveredMs: number; ticks: number }[] = [];
  const excused: { minute: string; coveredMs: number }[] = [];
  let expected = 0;
  const end = o.deletedAt - 10_000;
  for (let m = Math.ceil(o.createdAt / MINUTE) * MINUTE; m + MIN_COVERAGE_MS <= end; m += MINUTE) {
    const covered = coverage(o.timeline, m, Math.min(m + MINUTE, end), now);
    const minute = new Date(m).toISOString().slice(11, 16);
    minutes.push({ minute, coveredMs: covered, ticks: bySlot.get(m)?.length ?? 0 });
    if (covered < MIN_COVERAGE_MS) {
      if (!bySlot.has(m)) excused.push({ minute, coveredMs: covered });
      continue;
    }
    expected++;
    if (!bySlot.has(m))
      bad('no tick lost', '-', `no tick for ${minute} (API and database up ${covered} ms of it)`);
  }
  const perStartMinute = new Map<string, number>();
  for (const t of ticks) {
    if (!t.processId) continue;
    const { rows } = await pool.query<{ m: string }>(
      `SELECT date_trunc('minute', started_at)::text AS m FROM orchestrator.processes WHERE id = $1`,
      [t.processId],
    );
    const m = rows[0]?.m ?? '?';
    perStartMinute.set(m, (perStartMinute.get(m) ?? 0) + 1);
  }
  const summary = {
    createdAt: new Date(o.createdAt).toISOString(),
    deletedAt: new Date(o.deletedAt).toISOString(),
    tickMinutes: [...bySlot.keys()].sort().map((k) => new Date(k).toISOString().slice(11, 16)),
    minutes,
    ticks: ticks.length,
    processes: ticks.filter((t) => t.processId).length,
    minutesExpected: expected,
    minutesExcused: excused,
    skippedWhilePaused: skipped.paused,
    skippedAfterDeletion: skipped.deleted,
    retriedTicks: ticks.filter((t) => t.retries > 0).length,
    maxProcessesPerStartMinute: Math.max(0, ...perStartMinute.values()),
  };
  return { violations, summary };
}

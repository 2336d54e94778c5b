// Schedules on pg-boss cron. A schedule is a row of pg-boss's `pgboss.schedule` (queue
// SCHEDULE_QUEUE, key = the schedule's name, data = what to start). pg-boss's cron pass, run by
// every API instance, files each tick as one job: it claims the pass in the database and files an
// occurrence under a singleton key, so any number of instances make one job per tick. Each
// instance here fetches those jobs and starts the process of each in one transaction with the
// job's completion; the process takes the job's id, so a tick whose completion was lost (a crash
// after the commit) can never start a second process.
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../config/logger.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { markDefaultInstalled } from '../db/settings.ts';
import type { State } from '../db/model.ts';
import type { ScheduledStart } from '../engine/dispatch.ts';
import { SCHEDULE_QUEUE } from './boss.ts';
import { deleteSchedule, inTransaction } from '../db/jobs.ts';

export { SCHEDULE_QUEUE };

/** What a schedule starts, and when. */
export interface ScheduleDefinition {
  name: string;
  workflow: string;
  /** Five fields (minutes), or six (seconds first); pg-boss files at most one tick a minute. */
  cron: string;
  /** IANA time zone the cron is read in. Default UTC. */
  timezone: string;
  input: State | State[];
  /** false: a tick is skipped while the schedule's previous process has not ended. Default true. */
  overlap: boolean;
}

export interface ScheduleRow extends ScheduleDefinition {
  nextRunAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One tick of a schedule (its id is the job's: the id of the process it starts). */
export type Tick = ScheduledStart;

interface ScheduleData {
  /** The schedule's name, carried by each tick's job. */
  schedule: string;
  workflow: string;
  input: State | State[];
  overlap: boolean;
}

export interface Scheduler {
  list(): Promise<ScheduleRow[]>;
  get(name: string): Promise<ScheduleRow | undefined>;
  /** Creates or replaces; `created` when it did not exist. `db`: run inside that transaction. */
  put(s: ScheduleDefinition, db?: Queryable): Promise<'created' | 'updated'>;
  /** false when there was no such schedule. */
  remove(name: string): Promise<boolean>;
  /** The next time `cron` fires in `timezone`; throws with what is wrong with either. */
  nextRun(cron: string, timezone: string): Date;
  /**
   * Consumes ticks: `start` is called once per tick, in the transaction that completes it, and
   * what it returns is called once that transaction committed.
   */
  start(start: (tick: Tick) => Promise<() => void>): void;
  stop(): Promise<void>;
}

export interface SchedulerOptions {
  boss: PgBoss;
  pool: Pool;
  logger: Logger;
  /** How often to look for ticks. Default 2000 ms. */
  pollIntervalMs?: number;
}

export function createScheduler(opts: SchedulerOptions): Scheduler {
  const { boss, pool } = opts;
  const logger = opts.logger.child({ component: 'scheduler' });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let looking: Promise<void> | undefined;
  let onTick: ((tick: Tick) => Promise<() => void>) | undefined;

  const nextRun = (cron: string, timezone: string): Date => {
    const [next] = boss.previewSchedule(cron, { tz: timezone, count: 1 });
    if (!next) throw new Error('the expression has no next run');
    return next;
  };

  const toRow = (s: Awaited<ReturnType<PgBoss['getSchedules']>>[number]): ScheduleRow => {
    const data = (s.data ?? {}) as Partial<ScheduleData>;
    let nextRunAt: Date | null = null;
    try {
      nextRunAt = nextRun(s.cron, s.timezone);
    } catch {
      // A row changed behind the API's back: listed, without a next run.
    }
    return {
      name: s.key,
      workflow: data.workflow ?? '',
      cron: s.cron,
      timezone: s.timezone,
      input: data.input ?? {},
      overlap: data.overlap ?? true,
      nextRunAt,
      createdAt: s.createdOn,
      updatedAt: s.updatedOn,
    };
  };

  async function fetchTicks(): Promise<void> {
    for (;;) {
      const jobs = await boss.fetch<Partial<ScheduleData>>(SCHEDULE_QUEUE, { batchSize: 10 });
      if (jobs.length === 0) return;
      for (const job of jobs) {
        try {
          const after = await withTransaction(pool, async (tx) => {
            // The schedule as it is now: changed or deleted since the tick was filed, it counts.
            const name = job.data.schedule;
            const stored = name ? await boss.getSchedule(SCHEDULE_QUEUE, name) : null;
            let done = () => {};
            if (stored && onTick) done = await onTick({ id: job.id, schedule: toRow(stored), tx });
            else logger.info('tick of a deleted schedule skipped', { job: job.id, name });
            await boss.complete(SCHEDULE_QUEUE, job.id, null, { db: inTransaction(tx) });
            return done;
          });
          after();
        } catch (err) {
          // Left active: pg-boss retries it after its expiry; the process id makes a retry safe.
          logger.warn('scheduled start failed', { job: job.id, err });
          await boss.fail(SCHEDULE_QUEUE, job.id, { message: String(err) }).catch(() => {});
        }
      }
    }
  }

  function look(): void {
    if (stopped || looking) return;
    looking = fetchTicks()
      .catch((err: unknown) => logger.warn('looking for schedule ticks failed', { err }))
      .finally(() => {
        looking = undefined;
        if (!stopped) {
          timer = setTimeout(look, opts.pollIntervalMs ?? 2_000);
          timer.unref();
        }
      });
  }

  return {
    async list() {
      return (await boss.getSchedules(SCHEDULE_QUEUE)).map(toRow);
    },
    async get(name) {
      const s = await boss.getSchedule(SCHEDULE_QUEUE, name);
      return s ? toRow(s) : undefined;
    },
    async put(s, db) {
      const existed = (await boss.getSchedule(SCHEDULE_QUEUE, s.name)) !== null;
      const data: ScheduleData = {
        schedule: s.name,
        workflow: s.workflow,
        input: s.input,
        overlap: s.overlap,
      };
      await boss.schedule(SCHEDULE_QUEUE, s.cron, data, {
        tz: s.timezone,
        key: s.name,
        // One job per schedule and minute even if pg-boss forwards a tick twice (its forwarding
        // job retried after a crash): throttled by the key.
        singletonKey: s.name,
        singletonSeconds: 60,
        ...(db ? { db: inTransaction(db) } : {}),
      });
      return existed ? 'updated' : 'created';
    },
    async remove(name) {
      // One conditional statement: of two removes at once, one is told there was nothing.
      return deleteSchedule(pool, SCHEDULE_QUEUE, name);
    },
    nextRun,
    start(start) {
      onTick = start;
      look();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await looking;
    },
  } satisfies Scheduler;
}

/** The built-in tasks' schedules, installed once (each may be changed or deleted afterwards). */
export const DEFAULT_SCHEDULES: readonly ScheduleDefinition[] = [
  {
    name: 'task_resume_workflows',
    workflow: 'task_resume_workflows',
    cron: '0 * * * *',
    timezone: 'UTC',
    input: {},
    overlap: false,
  },
  {
    name: 'task_clean_up_tasks',
    workflow: 'task_clean_up_tasks',
    cron: '0 */6 * * *',
    timezone: 'UTC',
    input: {},
    overlap: false,
  },
  {
    name: 'task_validate_workflows',
    workflow: 'task_validate_workflows',
    cron: '0 2 * * *',
    timezone: 'UTC',
    input: {},
    overlap: false,
  },
];

/**
 * Installs each default schedule whose workflow is registered, once per database: a default
 * deleted or changed through the API stays as it was left. Instances starting together install
 * it once (the marker row's primary key decides, in the transaction that writes the schedule).
 */
export async function installDefaultSchedules(
  pool: Pool,
  scheduler: Scheduler,
  defaults: readonly ScheduleDefinition[],
  registered: (workflow: string) => boolean,
): Promise<string[]> {
  const installed: string[] = [];
  for (const d of defaults) {
    if (!registered(d.workflow)) continue;
    const done = await withTransaction(pool, async (tx) => {
      if (!(await markDefaultInstalled(tx, d.name))) return false;
      await scheduler.put(d, tx);
      return true;
    });
    if (done) installed.push(d.name);
  }
  return installed;
}

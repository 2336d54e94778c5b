// What is due at a time rather than on an event: callbacks past their timeout (in every API
// instance, whatever the executor) and, where no queue holds them, retries of waiting processes.
// Durable by construction: the times are columns (processes.retry_at, callbacks.expires_at) read
// through partial indexes that hold only what is pending, so a restart loses nothing and no look
// scans the table. Between looks it sleeps until the next time due (or `maxSleepMs`); a commit
// here that makes something due sooner says so with `hint`.
import type { Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import type { Pool } from '../db/pool.ts';
import { dueRetries } from '../db/processes.ts';
import { nextDue, timeOutCallbacks } from '../db/callbacks.ts';

export interface TimekeeperOptions {
  pool: Pool;
  publish: Publish;
  logger: Logger;
  /** Given the ids of waiting processes whose retry is due (threadpool: run them). Default: none. */
  retryDue?: (ids: string[]) => void;
  /** Longest sleep between two looks (another instance's commits send no hint). Default 5000 ms. */
  maxSleepMs?: number;
}

export interface Timekeeper {
  start(): void;
  /** Something is due at `at`: look then, if that is sooner than planned. */
  hint(at: Date): void;
  stop(): Promise<void>;
}

const BATCH = 200;

export function createTimekeeper(opts: TimekeeperOptions): Timekeeper {
  const logger = opts.logger.child({ component: 'timekeeper' });
  const maxSleepMs = opts.maxSleepMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let plannedAt = Infinity;
  let looking: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  function planAt(at: number): void {
    if (stopped || at >= plannedAt) return;
    clearTimeout(timer);
    plannedAt = at;
    timer = setTimeout(look, Math.max(0, at - Date.now()));
    timer.unref();
  }

  async function lookOnce(): Promise<void> {
    for (;;) {
      const timedOut = await timeOutCallbacks(opts.pool, BATCH);
      if (timedOut.length > 0) {
        opts.publish(timedOut.flat());
        logger.info('callbacks timed out', { count: timedOut.length });
      }
      if (timedOut.length < BATCH) break;
    }
    if (opts.retryDue) {
      const ids = await dueRetries(opts.pool, 500);
      if (ids.length > 0) opts.retryDue(ids);
    }
    const next = await nextDue(opts.pool);
    // A little after the time: the database's clock decides what is due.
    if (next) planAt(Math.min(next.getTime() + 20, Date.now() + maxSleepMs));
  }

  function look(): void {
    plannedAt = Infinity;
    if (stopped) return;
    if (looking) {
      again = true;
      return;
    }
    looking = lookOnce()
      .catch((err: unknown) => logger.warn('looking for due work failed', { err }))
      .finally(() => {
        looking = undefined;
        if (again) {
          again = false;
          look();
        } else planAt(Date.now() + maxSleepMs);
      });
  }

  return {
    start: look,
    hint: (at) => planAt(at.getTime() + 20),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await looking;
    },
  };
}

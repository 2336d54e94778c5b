// Live events leave the commit path. A step commit used to send NOTIFY from a trigger, inside its
// own transaction; Postgres holds one cluster-wide lock from a notifying commit's pre-commit until
// its WAL flush, so every notifying commit waited for the flushes of all the others (measured: the
// step-shaped commit 2.9× slower with the trigger, the engine 1.3×). Now the statements that change
// a process return the event they caused (built in SQL, below), the caller hands it to the
// publisher once the transaction has committed, and the publisher sends it on a connection of its
// own with `synchronous_commit = off`: its notifying transactions write no WAL to wait for, hold
// the lock for microseconds, and carry every event that arrived meanwhile in one NOTIFY.
//
// Guarantees kept: nothing is published before its commit (a rolled-back change is never
// announced); one process's events carry its row `version`, so a relay can drop a late event of an
// older version sent by another instance; and a listener can tell when it may have missed events,
// because every publisher numbers its batches and heartbeats: a gap in the numbers, or a publisher
// that goes silent without saying goodbye (its process died between a commit and its NOTIFY), is
// reported as missed (clients get `resync`).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import type { Logger } from '../config/logger.ts';
import { PROCESS_STATUSES, STEP_STATUSES } from './model.ts';
import type { Queryable } from './pool.ts';

/** The NOTIFY channel every instance listens on. */
export const EVENTS_CHANNEL = 'orchestrator_events';

/** Starts listening on `client` for the events every publisher sends. */
export async function listenForEvents(client: Queryable): Promise<void> {
  await client.query(`LISTEN ${EVENTS_CHANNEL}`);
}

/** Names in events are cut to this many characters, so payloads stay small. */
const NAME_LIMIT = 200;

/**
 * The `process` event of the processes row aliased `alias`, as JSON built by Postgres (timestamps
 * with their microseconds). For `RETURNING` clauses.
 */
export function processEventSql(alias: string): string {
  return `json_build_object('type', 'process', 'id', ${alias}.id,
    'workflowName', left(${alias}.workflow_name, ${NAME_LIMIT}), 'status', ${alias}.status,
    'lastStep', left(${alias}.last_step, ${NAME_LIMIT}), 'stepIndex', ${alias}.step_index,
    'isTask', ${alias}.is_task, 'lastModifiedAt', ${alias}.last_modified_at,
    'version', ${alias}.version)`;
}

/** The `step` event of the process_steps row aliased `alias`. For `RETURNING` clauses. */
export function stepEventSql(alias: string): string {
  return `json_build_object('type', 'step', 'id', ${alias}.id, 'processId', ${alias}.process_id,
    'index', ${alias}.step_index, 'name', left(${alias}.name, ${NAME_LIMIT}),
    'status', ${alias}.status, 'retries', ${alias}.retries, 'startedAt', ${alias}.started_at,
    'completedAt', ${alias}.completed_at)`;
}

// The events' shapes, once: the zod schemas of what the SQL builders above produce (checked
// against them by test/live-publishers.test.ts), the TypeScript types inferred from them, and
// the relay's parsing (src/live/events.ts) built on them.

/** A process was created or changed status or position (as built by `processEventSql`). */
export const processEventSchema = z.object({
  type: z.literal('process'),
  id: z.uuid(),
  workflowName: z.string(),
  status: z.enum(PROCESS_STATUSES),
  lastStep: z.string().nullable(),
  stepIndex: z.number().int(),
  isTask: z.boolean(),
  /** As Postgres writes a timestamp in JSON (microseconds, offset). */
  lastModifiedAt: z.string(),
  /** The row's version: grows with every change of the process. */
  version: z.number().int(),
});
export type ProcessEventRow = z.infer<typeof processEventSchema>;

/** A step row was written or updated (as built by `stepEventSql`). */
export const stepEventSchema = z.object({
  type: z.literal('step'),
  /** Row id: increases with every step row of a process. */
  id: z.number().int(),
  processId: z.uuid(),
  index: z.number().int(),
  name: z.string(),
  status: z.enum(STEP_STATUSES),
  retries: z.number().int(),
  startedAt: z.string(),
  completedAt: z.string(),
});
export type StepEventRow = z.infer<typeof stepEventSchema>;

/** The global lock was set or cleared. */
export const engineEventSchema = z.object({
  type: z.literal('engine'),
  globalLock: z.boolean(),
});
export type EngineEventRow = z.infer<typeof engineEventSchema>;

export type LiveEvent = ProcessEventRow | StepEventRow | EngineEventRow;

/** One NOTIFY payload: a publisher's numbered batch of events (empty: a heartbeat). */
export interface EventBatch {
  /** The publisher's id, new at every start. */
  p: string;
  /** Batch number, 1, 2, 3, … per publisher; a gap means a batch was dropped. */
  s: number;
  e: LiveEvent[];
  /** Set on the last batch of a publisher that stops cleanly. */
  bye?: true;
}

/** Hands events of a committed transaction to the publisher. Never throws, never waits. */
export interface Publish {
  (events: readonly (LiveEvent | null | undefined)[]): void;
  /** A change committed whose events are unknown: listeners are told they may have missed some. */
  missed(): void;
}

/** A publisher for tests and tools that have no listener to reach. */
export const publishNowhere: Publish = Object.assign(() => undefined, { missed: () => undefined });

export interface EventPublisherOptions {
  connectionString: string;
  logger: Logger;
  /** How often a publisher with nothing to send says it is alive. Default 1000 ms. */
  heartbeatMs?: number;
  /** Events kept while the database is unreachable; older ones are dropped (a gap). Default 50,000. */
  maxQueued?: number;
  /**
   * Least time between two NOTIFYs of this publisher: an idle one sends at once, a busy one
   * gathers what arrives meanwhile into the next (each NOTIFY is a transaction that takes the
   * cluster's notify lock). Default 2 ms.
   */
  minIntervalMs?: number;
}

export interface EventPublisher {
  id: string;
  publish: Publish;
  /** Connects and announces itself; resolves once the first batch went out. */
  start(): Promise<void>;
  /** Sends what is queued, says goodbye, closes. Idempotent. */
  stop(): Promise<void>;
}

/** NOTIFY payloads must stay below 8000 bytes; batches are cut well before. */
const PAYLOAD_LIMIT = 7_000;

/** Cuts events into payloads below PAYLOAD_LIMIT bytes (an event alone is far smaller). */
function toPayloads(
  id: string,
  nextSeq: () => number,
  events: LiveEvent[],
  bye: boolean,
): string[] {
  const out: string[] = [];
  let chunk: string[] = [];
  let size = 0;
  const flush = (last: boolean) => {
    const batch = `{"p":${JSON.stringify(id)},"s":${nextSeq()},"e":[${chunk.join(',')}]${last && bye ? ',"bye":true' : ''}}`;
    out.push(batch);
    chunk = [];
    size = 0;
  };
  for (const e of events) {
    const json = JSON.stringify(e);
    if (size + json.length > PAYLOAD_LIMIT && chunk.length > 0) flush(false);
    chunk.push(json);
    size += json.length + 1;
  }
  if (chunk.length > 0 || out.length === 0) flush(true);
  return out;
}

export function createEventPublisher(opts: EventPublisherOptions): EventPublisher {
  const logger = opts.logger.child({ component: 'live-publisher' });
  const id = randomUUID();
  const heartbeatMs = opts.heartbeatMs ?? 1_000;
  const maxQueued = opts.maxQueued ?? 50_000;
  const minIntervalMs = opts.minIntervalMs ?? 2;
  let queue: LiveEvent[] = [];
  let seq = 0;
  let client: pg.Client | undefined;
  let sending: Promise<void> | undefined;
  let lastSent = 0;
  let stopped = false;
  let started: Promise<void> | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let retryDelay = 100;
  let retryTimer: NodeJS.Timeout | undefined;

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({
      connectionString: opts.connectionString,
      application_name: 'orchestrator-live-publisher',
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
      // Non-durable: a NOTIFY-only transaction has nothing worth an fsync, and without the flush
      // it holds the notify lock for microseconds.
      options: '-c synchronous_commit=off',
    });
    c.on('error', (err) => logger.warn('publisher connection error', { err: err.message }));
    c.on('end', () => {
      if (client === c) client = undefined;
    });
    await c.connect();
    return c;
  }

  /** Sends everything queued as one transaction; on failure keeps it and retries later. */
  async function sendQueued(bye = false): Promise<void> {
    const events = queue;
    queue = [];
    const payloads = toPayloads(id, () => ++seq, events, bye);
    try {
      client ??= await connect();
      await client.query({
        name: 'orchestrator-publish',
        text: `SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS t (payload, n) ORDER BY n`,
        values: [EVENTS_CHANNEL, payloads],
      });
      lastSent = Date.now();
      retryDelay = 100;
    } catch (err) {
      // Nothing of it was delivered (one transaction): the same numbers go out with the retry.
      seq -= payloads.length;
      queue = events.concat(queue);
      if (queue.length > maxQueued) {
        // Dropped events leave a gap in the numbers: listeners tell their clients to resync.
        queue = queue.slice(queue.length - maxQueued);
        seq++;
      }
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
      throw err;
    }
  }

  let scheduled = false;
  function pump(): void {
    if (sending || stopped || retryTimer || queue.length === 0 || scheduled) return;
    // Events published in the same turn of the event loop (a batch of step commits resolving, a
    // batch of claims) go out together: one NOTIFY instead of one per event.
    scheduled = true;
    const wait = lastSent + minIntervalMs - Date.now();
    if (wait > 0) setTimeout(send, wait);
    else setImmediate(send);
  }

  function send(): void {
    scheduled = false;
    if (sending || stopped || retryTimer || queue.length === 0) return;
    sending = (async () => {
      try {
        while (queue.length > 0 && !stopped) await sendQueued();
      } catch (err) {
        logger.warn('publishing live events failed, retrying', {
          err: (err as Error).message,
          retryInMs: retryDelay,
        });
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          pump();
        }, retryDelay);
        retryTimer.unref();
        retryDelay = Math.min(retryDelay * 2, 5_000);
      } finally {
        sending = undefined;
      }
    })();
    void sending.then(pump);
  }

  const publish: Publish = Object.assign(
    (events: readonly (LiveEvent | null | undefined)[]) => {
      if (stopped) return;
      for (const e of events) if (e) queue.push(e);
      pump();
    },
    {
      missed() {
        // A skipped number is a gap every listener notices.
        seq++;
      },
    },
  );

  return {
    id,
    publish,
    start() {
      started ??= (async () => {
        // The first (empty) batch introduces this publisher to every listener before it commits
        // anything: a publisher that dies later is then noticed by its silence.
        for (let delay = 100; ; delay = Math.min(delay * 2, 5_000)) {
          try {
            await sendQueued();
            break;
          } catch (err) {
            if (stopped) return;
            logger.warn('live publisher cannot reach the database, retrying', {
              err: (err as Error).message,
            });
            await new Promise((r) => setTimeout(r, delay));
          }
        }
        heartbeat = setInterval(() => {
          if (Date.now() - lastSent >= heartbeatMs && !sending && !retryTimer) {
            sending = sendQueued()
              .catch(() => undefined)
              .finally(() => {
                sending = undefined;
                pump();
              });
          }
        }, heartbeatMs / 2);
        heartbeat.unref();
      })();
      return started;
    },
    async stop() {
      if (stopped) return;
      clearInterval(heartbeat);
      clearTimeout(retryTimer);
      retryTimer = undefined;
      await sending;
      stopped = true;
      // The goodbye carries whatever was still queued.
      await sendQueued(true).catch((err: unknown) =>
        logger.warn('could not send the last live events', { err: (err as Error).message }),
      );
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}

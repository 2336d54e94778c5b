// One dedicated LISTEN connection per API instance (LISTEN needs a session of its own; a pooled
// client would lose it on release). Reconnects with backoff after a database restart and then
// reports `reconnected`, since whatever was notified while it was away is lost. It also watches
// the publishers (src/db/events.ts): a gap in a publisher's batch numbers, or a publisher silent
// for longer than `silenceMs` without its goodbye, is reported as `missed`. Events of one process
// come out in the order of its row version: a late one older than what was emitted is dropped.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { listenForEvents } from '../db/events.ts';
import { ping } from '../db/pool.ts';
import type { Logger } from '../config/logger.ts';
import { EVENTS_CHANNEL, parseNotification, type Notification, type RawEvent } from './events.ts';

export interface ListenerOptions {
  connectionString: string;
  logger: Logger;
  /** First reconnect delay in ms, doubled per failed attempt. Default 100. */
  minDelayMs?: number;
  /** Longest reconnect delay in ms. Default 5000. */
  maxDelayMs?: number;
  /** How often the connection is checked with a query, in ms (finds half-open sockets). Default 15000. */
  checkIntervalMs?: number;
  /** A publisher not heard of for this long (it heartbeats every second) has died. Default 3000 ms. */
  silenceMs?: number;
  /** The events this listener emits; the others are skipped before validation. Default: all. */
  wanted?: (e: RawEvent) => boolean;
}

export interface ListenerEvents {
  /** A parsed notification, in commit order. */
  notification: [Notification];
  /** Listening again after the connection was lost: notifications may have been missed. */
  reconnected: [];
  /** A publisher skipped events or died before sending them: some may have been missed. */
  missed: [];
}

export interface Listener extends EventEmitter<ListenerEvents> {
  /** Connects and LISTENs; resolves once listening (retrying until then). Idempotent. */
  start(): Promise<void>;
  /** Closes the connection and stops reconnecting. Idempotent. */
  stop(): Promise<void>;
  /** Whether the LISTEN connection is up right now. */
  connected(): boolean;
}

export function createListener(opts: ListenerOptions): Listener {
  const logger = opts.logger.child({ component: 'live-listener' });
  const minDelay = opts.minDelayMs ?? 100;
  const maxDelay = opts.maxDelayMs ?? 5_000;
  const emitter = new EventEmitter<ListenerEvents>() as Listener;
  let client: pg.Client | undefined;
  let stopped = false;
  let started: Promise<void> | undefined;
  let everConnected = false;
  let reconnecting: Promise<void> | undefined;
  let checkTimer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const silenceMs = opts.silenceMs ?? 3_000;
  /** Publishers heard of: their last batch number and when it came. */
  const publishers = new Map<string, { seq: number; at: number }>();
  /** The last version emitted per process, oldest first (a bounded LRU). */
  const versions = new Map<string, number>();
  const MAX_VERSIONS = 100_000;

  function emitSafely(...args: ['notification', Notification] | ['missed']): void {
    try {
      if (args[0] === 'notification') emitter.emit('notification', args[1]);
      else emitter.emit('missed');
    } catch (err) {
      // A faulty subscriber must not break the connection's event loop.
      logger.error('live event handler failed', { err });
    }
  }

  /** Whether a process event is newer than the last one emitted for its process (and records it). */
  function isNewer(id: string, version: number): boolean {
    const last = versions.get(id);
    if (last !== undefined && version <= last) return false;
    versions.delete(id);
    versions.set(id, version);
    if (versions.size > MAX_VERSIONS) versions.delete(versions.keys().next().value as string);
    return true;
  }

  let silenceTimer: NodeJS.Timeout | undefined;
  function checkSilence(): void {
    const now = Date.now();
    let silent = false;
    for (const [id, p] of publishers) {
      if (now - p.at > silenceMs) {
        publishers.delete(id);
        silent = true;
        logger.warn('a live publisher went silent: clients resync', { publisher: id });
      }
    }
    if (silent && client) emitSafely('missed');
  }

  /** Sleeps `ms`, cut short by stop(). */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  async function connectOnce(): Promise<void> {
    const c = new pg.Client({
      connectionString: opts.connectionString,
      application_name: 'orchestrator-live',
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
    });
    // Errors on an idle client (server restart) arrive here; `end` then triggers the reconnect.
    c.on('error', (err) => logger.warn('live connection error', { err: err.message }));
    c.on('end', () => {
      if (client === c) {
        client = undefined;
        if (!stopped) void reconnect();
      }
    });
    c.on('notification', (msg) => {
      if (msg.channel !== EVENTS_CHANNEL) return;
      const batch = parseNotification(msg.payload, opts.wanted);
      if (!batch) {
        logger.warn('unexpected live notification', { payload: msg.payload?.slice(0, 200) });
        return;
      }
      if (batch.invalid.length > 0)
        logger.warn('unexpected live events', {
          events: JSON.stringify(batch.invalid).slice(0, 200),
        });
      const known = publishers.get(batch.publisher);
      if (batch.bye) publishers.delete(batch.publisher);
      else publishers.set(batch.publisher, { seq: batch.seq, at: Date.now() });
      if (known && batch.seq !== known.seq + 1) {
        logger.warn('a live publisher skipped events: clients resync', {
          publisher: batch.publisher,
          expected: known.seq + 1,
          got: batch.seq,
        });
        emitSafely('missed');
      }
      for (const event of batch.events) {
        if (event.type === 'process' && !isNewer(event.id, event.version)) continue;
        emitSafely('notification', event);
      }
    });
    try {
      await c.connect();
      await listenForEvents(c);
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    if (stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    // Whatever was heard before the connection was lost is stale: `reconnected` says so.
    publishers.clear();
    client = c;
  }

  /** Connects, retrying with backoff until it works or stop() is called. */
  async function connectWithRetry(): Promise<void> {
    for (let delay = minDelay; !stopped; delay = Math.min(delay * 2, maxDelay)) {
      try {
        await connectOnce();
        return;
      } catch (err) {
        logger.warn('live connection failed, retrying', {
          err: (err as Error).message,
          retryInMs: delay,
        });
        // Jitter spreads the reconnects of many instances after one database restart.
        await pause(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }

  function reconnect(): Promise<void> {
    reconnecting ??= (async () => {
      logger.warn('live connection lost, reconnecting');
      await pause(minDelay);
      await connectWithRetry();
      reconnecting = undefined;
      if (!stopped && client) {
        logger.info('live connection restored');
        emitter.emit('reconnected');
      }
    })();
    return reconnecting;
  }

  /** A query on the LISTEN connection: finds a connection that died without a FIN. */
  function check(): void {
    const c = client;
    if (!c || reconnecting) return;
    ping(c).catch(() => {
      if (client !== c) return;
      client = undefined;
      void c.end().catch(() => undefined);
      if (!stopped) void reconnect();
    });
  }

  emitter.start = () => {
    started ??= (async () => {
      await connectWithRetry();
      everConnected = true;
      checkTimer = setInterval(check, opts.checkIntervalMs ?? 15_000);
      checkTimer.unref();
      silenceTimer = setInterval(checkSilence, Math.max(100, silenceMs / 3));
      silenceTimer.unref();
    })();
    return started;
  };

  emitter.stop = async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(checkTimer);
    clearInterval(silenceTimer);
    wake?.();
    const c = client;
    client = undefined;
    await c?.end().catch(() => undefined);
    await reconnecting?.catch(() => undefined);
  };

  emitter.connected = () => everConnected && client !== undefined;
  return emitter;
}

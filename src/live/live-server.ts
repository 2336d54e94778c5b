// Relays the database's live events to Socket.IO clients of this API instance. Every instance
// listens itself, so any number of instances on one database each reach their own clients.
//
// A process's room gets every event of the process at once, in order. The process list (room
// `processes`) gets, per event-loop turn, only the latest `process:updated` of each process that
// changed in it (its final status always among them), or per 100 ms window while the list costs
// more than LIST_BUSY_MESSAGES_PER_SECOND: each event to the list is one websocket message per
// watcher. And a websocket's messages queued behind one in flight go out in one write.
import type http from 'node:http';
import type { Socket as TcpSocket } from 'node:net';
import { Server, type Socket } from 'socket.io';
import type { Logger } from '../config/logger.ts';
import type { Queryable } from '../db/pool.ts';
import { processExists } from '../db/processes.ts';
import { getEngineStatus, type EngineStatus } from '../db/settings.ts';
import {
  PROCESSES_ROOM,
  processRoom,
  subscriptionSchema,
  type ClientToServerEvents,
  type Notification,
  type ProcessUpdatedEvent,
  type ServerToClientEvents,
  type SubscribeAck,
  type Subscription,
} from './events.ts';
import { createListener, type Listener } from './listener.ts';

export interface LiveServerOptions {
  httpServer: http.Server;
  /** The API's pool: subscription checks and engine status reads. */
  pool: Queryable;
  /** Where the dedicated LISTEN connection goes. */
  connectionString: string;
  logger: Logger;
  /**
   * Checks the handshake's `auth: { token }`; a client without a valid one is refused
   * (`connect_error` with message `unauthorized`). Default: everyone may connect.
   */
  authenticate?: ((token: string) => Promise<LiveCredential | undefined>) | undefined;
  /** Origins allowed to connect from a browser page of another origin. Default: none. */
  corsOrigins?: readonly string[];
  /**
   * Checks a handshake's HTTP request before anything else (its `Host` and `Origin`, without
   * authentication): the reason it is refused, or undefined. Default: every request is checked
   * by `authenticate` alone.
   */
  checkRequest?: ((req: http.IncomingMessage) => string | undefined) | undefined;
}

/** What `authenticate` found of a valid token: when it expires (ms since the epoch), if ever. */
export interface LiveCredential {
  expiresAt?: number | undefined;
}

/** The longest a Node.js timer waits at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LiveServer {
  io: Server<ClientToServerEvents, ServerToClientEvents>;
  listener: Listener;
  /** Starts listening; resolves once the LISTEN connection is up. */
  start(): Promise<void>;
  /** Disconnects every client, stops listening and closes the HTTP server. Idempotent. */
  close(): Promise<void>;
}

type LiveSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** A notification as clients get it: without the internal `type` tag. */
function payloadOf<T extends { type: string }>(event: T): Omit<T, 'type'> {
  const payload: Partial<T> = { ...event };
  delete payload.type;
  return payload as Omit<T, 'type'>;
}

/**
 * Above this many websocket messages a second for the process list (its updates × its watchers;
 * ~1.5 µs of the API's CPU each, measured), it gets the latest update of each changed process once
 * per window instead of once per turn: a busy engine (200 watchers of 500 processes/s is 500,000
 * messages) pays a few messages per process instead of one per change, at up to a window's delay.
 * Below it (one process at a time, ~100 processes/s, watched by 200: 100,000) nothing waits.
 */
const LIST_BUSY_MESSAGES_PER_SECOND = 200_000;
const LIST_BUSY_WINDOW_MS = 100;

/** The part of an Engine.IO transport used here (its websocket is `ws`'s, over a TCP socket). */
interface EngineTransport {
  name: string;
  send(packets: unknown[]): void;
  socket?: { _socket?: TcpSocket };
}

/**
 * Engine.IO writes each packet to a websocket with a system call of its own, also the packets that
 * queued while the previous write was in flight and now go out together: corking the TCP socket
 * around a transport's send makes those one write (on 2 cores, the system calls of 200 watchers
 * were 42 % of the API's CPU time).
 */
function corkWebsocketSends(transport: EngineTransport): void {
  const tcp = transport.socket?._socket;
  if (transport.name !== 'websocket' || typeof tcp?.cork !== 'function') return;
  const send = transport.send.bind(transport);
  transport.send = (packets) => {
    tcp.cork();
    try {
      send(packets);
    } finally {
      tcp.uncork();
    }
  };
}

export function createLiveServer(opts: LiveServerOptions): LiveServer {
  const logger = opts.logger.child({ component: 'live' });
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(opts.httpServer, {
    cors: { origin: opts.corsOrigins?.length ? [...opts.corsOrigins] : false },
    serveClient: true,
    // The default, said: with compression a broadcast is no longer encoded once for every socket.
    perMessageDeflate: false,
    ...(opts.checkRequest
      ? {
          allowRequest: (req, callback) => {
            const refused = opts.checkRequest!(req);
            callback(refused ?? null, refused === undefined);
          },
        }
      : {}),
  });
  io.engine.on(
    'connection',
    (conn: {
      transport: EngineTransport;
      on(e: 'upgrade', f: (t: EngineTransport) => void): void;
    }) => {
      corkWebsocketSends(conn.transport);
      conn.on('upgrade', corkWebsocketSends);
    },
  );
  let lastEngine: EngineStatus | undefined;
  const watchers = (room: string) => io.sockets.adapter.rooms.get(room)?.size ?? 0;
  const watched = (room: string) => watchers(room) > 0;
  // Events nobody here watches are skipped before they are validated or encoded: with no client
  // in its rooms, a process's events cost this instance only the parse of their NOTIFY.
  const listener = createListener({
    connectionString: opts.connectionString,
    logger,
    wanted: (e) => {
      if (e.type === 'process')
        return (
          lastEngine?.globalLock === true ||
          watched(PROCESSES_ROOM) ||
          watched(processRoom(String(e.id)))
        );
      if (e.type === 'step') return watched(processRoom(String(e.processId)));
      return true;
    },
  });
  /** The latest update of each process not yet sent to the process list. */
  const listPending = new Map<string, ProcessUpdatedEvent>();
  /** Cancels the scheduled flush of the list, if one is. */
  let listScheduled: (() => void) | undefined;
  /** List messages counted since `listSince`; `listBusy`: over the limit in the last second. */
  let listMessages = 0;
  let listSince = performance.now();
  let listBusy = false;

  /** Queues a process list update: sent at the end of the turn, or of the window while busy. */
  function queueList(update: ProcessUpdatedEvent, watchers: number): void {
    listPending.set(update.id, update);
    listMessages += watchers;
    const now = performance.now();
    if (now - listSince >= 1_000) {
      listBusy = (listMessages * 1_000) / (now - listSince) > LIST_BUSY_MESSAGES_PER_SECOND;
      listMessages = 0;
      listSince = now;
    }
    if (listScheduled) return;
    if (listBusy) {
      const t = setTimeout(flushList, LIST_BUSY_WINDOW_MS);
      listScheduled = () => clearTimeout(t);
    } else {
      const t = setImmediate(flushList);
      listScheduled = () => clearImmediate(t);
    }
  }

  function clearListTimer(): void {
    listScheduled?.();
    listScheduled = undefined;
  }

  /**
   * Sends the process list what is pending. A socket also in a process's room already got the
   * process's updates there, in order, and is left out. Runs at the end of the turn, and before
   * anything that must not overtake it: a room joined or left, `resync`, `engine:status`.
   */
  function flushList(): void {
    clearListTimer();
    if (listPending.size === 0) return;
    const updates = [...listPending.values()];
    listPending.clear();
    for (const u of updates)
      io.to(PROCESSES_ROOM).except(processRoom(u.id)).emit('process:updated', u);
  }

  /** To every client, after the process list's pending updates. */
  function emitAll<E extends 'resync' | 'engine:status'>(
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void {
    flushList();
    io.emit(event, ...args);
  }

  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  let closing: Promise<void> | undefined;

  /** Re-reads the engine status and tells every client when it changed (or when `force`). */
  function refreshEngineStatus(force = false): Promise<void> {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        try {
          const next = await getEngineStatus(opts.pool);
          const changed =
            !lastEngine ||
            lastEngine.globalLock !== next.globalLock ||
            lastEngine.engineStatus !== next.engineStatus ||
            lastEngine.runningProcesses !== next.runningProcesses;
          lastEngine = next;
          if (changed || force) emitAll('engine:status', next);
          force = false;
        } catch (err) {
          logger.warn('engine status read failed', { err: (err as Error).message });
        }
      } while (refreshAgain && !closing);
      refreshing = undefined;
    })();
    return refreshing;
  }

  function relay(event: Notification): void {
    switch (event.type) {
      case 'process': {
        const update = payloadOf(event);
        const room = processRoom(event.id);
        if (watched(room)) io.to(room).emit('process:updated', update);
        const list = watchers(PROCESSES_ROOM);
        if (list > 0) queueList(update, list);
        // While paused, processes finishing move the engine from PAUSING to PAUSED.
        if (lastEngine?.globalLock) void refreshEngineStatus();
        break;
      }
      case 'step': {
        io.to(processRoom(event.processId)).emit('process:step', payloadOf(event));
        break;
      }
      case 'engine':
        void refreshEngineStatus(true);
        break;
    }
  }

  listener.on('notification', relay);
  listener.on('reconnected', () => {
    emitAll('resync', { reason: 'reconnected' });
    void refreshEngineStatus(true);
  });
  listener.on('missed', () => {
    emitAll('resync', { reason: 'missed' });
    void refreshEngineStatus(true);
  });

  function fail(code: string, message: string): SubscribeAck {
    return { error: { code, message } };
  }

  async function roomOf(s: unknown): Promise<string | SubscribeAck> {
    const parsed = subscriptionSchema.safeParse(s);
    if (!parsed.success) {
      return fail(
        'validation_error',
        `Expected {"processId": "<uuid>"} or {"room": "${PROCESSES_ROOM}"}`,
      );
    }
    const sub: Subscription = parsed.data;
    if ('room' in sub) return PROCESSES_ROOM;
    if (!(await processExists(opts.pool, sub.processId))) {
      return fail('process_not_found', `No process with id ${sub.processId}`);
    }
    return processRoom(sub.processId);
  }

  function onConnection(socket: LiveSocket): void {
    const handle =
      (join: boolean) =>
      (s: Subscription, ack?: (a: SubscribeAck) => void): void => {
        const reply = typeof ack === 'function' ? ack : () => undefined;
        roomOf(s).then(
          async (room) => {
            if (typeof room !== 'string') return reply(room);
            // Joining or leaving a process's room changes who gets its pending list updates.
            flushList();
            if (join) await socket.join(room);
            else await socket.leave(room);
            reply({ ok: true });
          },
          (err: unknown) => {
            logger.warn('subscribe failed', { err: (err as Error).message });
            reply(fail('unavailable', 'Subscription could not be checked; try again'));
          },
        );
      };
    socket.on('subscribe', handle(true));
    socket.on('unsubscribe', handle(false));
    // A fresh read: runningProcesses is only tracked while the lock is set.
    getEngineStatus(opts.pool).then(
      (status) => socket.emit('engine:status', status),
      (err: unknown) => logger.warn('engine status read failed', { err: (err as Error).message }),
    );
  }
  const { authenticate } = opts;
  if (authenticate) {
    io.use((socket, next) => {
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      if (typeof token !== 'string' || token === '') return next(new Error('unauthorized'));
      authenticate(token).then(
        (who) => {
          if (!who) return next(new Error('unauthorized'));
          (socket.data as { expiresAt?: number }).expiresAt = who.expiresAt;
          next();
        },
        () => next(new Error('unauthorized')),
      );
    });
  }
  /**
   * A connection lasts as long as its token: when it expires the socket is disconnected (the
   * client's `disconnect` says `io server disconnect`), and a new handshake needs a valid token.
   */
  function expireAt(socket: LiveSocket, expiresAt: number): void {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const left = expiresAt - Date.now();
      if (left <= 0) {
        logger.debug('live connection closed: its token expired', { socket: socket.id });
        socket.disconnect(true);
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      timer.unref();
    };
    arm();
    socket.once('disconnect', () => clearTimeout(timer));
  }
  io.on('connection', (socket) => {
    const { expiresAt } = socket.data as { expiresAt?: number };
    if (expiresAt !== undefined) expireAt(socket, expiresAt);
    onConnection(socket);
  });

  return {
    io,
    listener,
    async start() {
      await listener.start();
      await refreshEngineStatus();
    },
    close() {
      closing ??= (async () => {
        await listener.stop();
        clearListTimer();
        listPending.clear();
        await io.close();
        await refreshing;
      })();
      return closing;
    },
  };
}

// Relays the database's live events to Socket.IO clients of this API instance. Every instance
// listens itself, so any number of instances on one database each reach their own clients.
import type http from 'node:http';
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
}

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

export function createLiveServer(opts: LiveServerOptions): LiveServer {
  const logger = opts.logger.child({ component: 'live' });
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(opts.httpServer, {
    serveClient: true,
  });
  let lastEngine: EngineStatus | undefined;
  const watched = (room: string) => (io.sockets.adapter.rooms.get(room)?.size ?? 0) > 0;
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
          if (changed || force) io.emit('engine:status', next);
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
        io.to(PROCESSES_ROOM).to(processRoom(event.id)).emit('process:updated', payloadOf(event));
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
    io.emit('resync', { reason: 'reconnected' });
    void refreshEngineStatus(true);
  });
  listener.on('missed', () => {
    io.emit('resync', { reason: 'missed' });
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
  io.on('connection', onConnection);

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
        await io.close();
        await refreshing;
      })();
      return closing;
    },
  };
}

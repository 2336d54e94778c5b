// The live events: what publishers announce on `orchestrator_events` after their commits (see
// src/db/events.ts) and what Socket.IO clients receive. Names follow DESIGN.md.
import { z } from 'zod';
import { engineEventSchema, processEventSchema, stepEventSchema } from '../db/events.ts';

export { EVENTS_CHANNEL } from '../db/events.ts';

/** Socket.IO room of the process list; a process's own room is `process:<id>`. */
export const PROCESSES_ROOM = 'processes';
export const processRoom = (id: string) => `process:${id}`;

/** Timestamps arrive as JSON strings from Postgres; relayed as ISO strings. */
const timestamp = z.string().transform((s) => new Date(s).toISOString());

// The events as published (src/db/events.ts), with their timestamps relayed as ISO strings.
const processNotification = processEventSchema.extend({ lastModifiedAt: timestamp });
const stepNotification = stepEventSchema.extend({ startedAt: timestamp, completedAt: timestamp });
const engineNotification = engineEventSchema;

const notification = z.discriminatedUnion('type', [
  processNotification,
  stepNotification,
  engineNotification,
]);

export type Notification = z.infer<typeof notification>;
export type ProcessNotification = z.infer<typeof processNotification>;
export type StepNotification = z.infer<typeof stepNotification>;

/** `process:updated`, to rooms `processes` and `process:<id>`. */
export type ProcessUpdatedEvent = Omit<ProcessNotification, 'type'>;
/** `process:step`, to room `process:<id>`. */
export type ProcessStepEvent = Omit<StepNotification, 'type'>;

/** `engine:status`, to every client. */
export interface EngineStatusEvent {
  globalLock: boolean;
  runningProcesses: number;
  engineStatus: 'RUNNING' | 'PAUSING' | 'PAUSED';
}

/**
 * `resync`, to every client: notifications may have been missed, refetch over REST. `reconnected`:
 * the relay's LISTEN connection was down; `missed`: a publisher skipped events or went silent
 * (its process died between a commit and its NOTIFY).
 */
export interface ResyncEvent {
  reason: 'reconnected' | 'missed';
}

/** Events the server emits, for typed Socket.IO servers and clients. */
export interface ServerToClientEvents {
  'process:updated': (e: ProcessUpdatedEvent) => void;
  'process:step': (e: ProcessStepEvent) => void;
  'engine:status': (e: EngineStatusEvent) => void;
  resync: (e: ResyncEvent) => void;
}

/** What `subscribe`/`unsubscribe` take: one process, or the process list. */
export const subscriptionSchema = z.union([
  z.object({ processId: z.uuid() }).strict(),
  z.object({ room: z.literal(PROCESSES_ROOM) }).strict(),
]);
export type Subscription = z.infer<typeof subscriptionSchema>;

/** The acknowledgement of `subscribe`/`unsubscribe`. */
export type SubscribeAck = { ok: true } | { error: { code: string; message: string } };

export interface ClientToServerEvents {
  subscribe: (s: Subscription, ack?: (a: SubscribeAck) => void) => void;
  unsubscribe: (s: Subscription, ack?: (a: SubscribeAck) => void) => void;
}

const batch = z.object({
  p: z.string().min(1),
  s: z.number().int(),
  e: z.array(z.unknown()),
  bye: z.literal(true).optional(),
});

/** One NOTIFY payload: a publisher's numbered batch (see EventBatch in src/db/events.ts). */
export interface NotificationBatch {
  publisher: string;
  seq: number;
  bye: boolean;
  events: Notification[];
  /** Events in the batch that did not parse (logged by the caller). */
  invalid: unknown[];
}

/** A raw event as it arrives, before validation: enough to skip the ones a listener ignores. */
export interface RawEvent {
  type?: unknown;
  status?: unknown;
  id?: unknown;
  processId?: unknown;
}

/**
 * Parses a NOTIFY payload; undefined for anything that is not a batch (logged by the caller).
 * Events `wanted` refuses are skipped unvalidated (a worker needs few of them).
 */
export function parseNotification(
  payload: string | undefined,
  wanted: (e: RawEvent) => boolean = () => true,
): NotificationBatch | undefined {
  if (!payload) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const b = batch.safeParse(json);
  if (!b.success) return undefined;
  const events: Notification[] = [];
  const invalid: unknown[] = [];
  for (const e of b.data.e) {
    if (typeof e === 'object' && e !== null && !wanted(e)) continue;
    const r = notification.safeParse(e);
    if (r.success) events.push(r.data);
    else invalid.push(e);
  }
  return { publisher: b.data.p, seq: b.data.s, bye: b.data.bye === true, events, invalid };
}

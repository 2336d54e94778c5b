// Item 1, the ceiling: the shape of a step commit (insert a step row with a ~200-byte state,
// update the process row fenced by its lease token, one statement = one transaction), run
// directly with `pg` at 16 connections on the orchestrator's own tables and indexes. The
// reference is measured with none of the orchestrator's triggers on those two tables
// (`withoutTriggers`); the same with the triggers on is shown for reference. Also with bigger
// states (1 KB, 100 KB, 1 MB), the reference of the big-state throughput rows.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const CEILING_CONNECTIONS = 16;
/** The ~200-byte state: `{"payload":"xxx…","n":step}`. */
const DEFAULT_PAYLOAD = 180;

/** The step-shaped commit: $1 process, $2 step index, $3 name, $4 state, $5 lease token. */
export const CEILING_COMMIT = `WITH p AS (
    UPDATE orchestrator.processes
       SET step_index = $2, last_step = $3, status = 'running', last_modified_at = now(),
           lease_expires_at = now() + make_interval(secs => 30)
     WHERE id = $1 AND lease_token = $5
    RETURNING id)
  INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
  SELECT id, $2, $3, 'success', $4, now() FROM p`;

/**
 * `connections` clients, each with a running process of its own (ids[i]) that the ceiling's
 * statement advances, all leased with `token`.
 */
export async function ceilingClients(
  url: string,
  connections: number,
): Promise<{ clients: pg.Client[]; ids: string[]; token: string }> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: url, application_name: 'bench-ceiling' });
      await c.connect();
      return c;
    }),
  );
  const ids = clients.map(() => randomUUID());
  const token = randomUUID();
  await clients[0]!.query(
    `INSERT INTO orchestrator.processes (id, workflow_name, status, target, lease_token, lease_owner)
     SELECT unnest($1::uuid[]), 'ceiling', 'running', 'modify', $2, 'bench'`,
    [ids, token],
  );
  return { clients, ids, token };
}

/** A state of `payloadBytes` characters of payload, as JSON text, for step `n`. */
function stateMaker(payloadBytes: number): (n: number) => string {
  const head = `{"payload":"${'x'.repeat(payloadBytes)}","n":`;
  return (n) => `${head}${n}}`;
}

export interface CeilingOptions {
  /** Characters of payload in the state (default 180: a ~200-byte state). */
  payloadBytes?: number;
  connections?: number;
}

/** Commits per second over `durationMs`, each connection advancing its own process. */
export async function measureCeiling(
  url: string,
  durationMs: number,
  opts: CeilingOptions = {},
): Promise<number> {
  const state = stateMaker(opts.payloadBytes ?? DEFAULT_PAYLOAD);
  const { clients, ids, token } = await ceilingClients(
    url,
    opts.connections ?? CEILING_CONNECTIONS,
  );
  try {
    let commits = 0;
    const started = performance.now();
    const end = started + durationMs;
    await Promise.all(
      clients.map(async (c, i) => {
        for (let step = 0; performance.now() < end; step++) {
          await c.query({
            name: 'ceiling-commit',
            text: CEILING_COMMIT,
            values: [ids[i], step, `Step ${step}`, state(step), token],
          });
          commits++;
        }
      }),
    );
    return commits / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** Latency of one such commit on an idle database, one connection: the unit latencies compare to. */
export async function measureCommitLatency(url: string, count: number): Promise<number[]> {
  const state = stateMaker(DEFAULT_PAYLOAD);
  const {
    clients: [c],
    ids: [id],
    token,
  } = await ceilingClients(url, 1);
  if (!c) throw new Error('no client');
  try {
    const samples: number[] = [];
    for (let step = 0; step < count + 20; step++) {
      const t0 = performance.now();
      await c.query({
        name: 'ceiling-commit',
        text: CEILING_COMMIT,
        values: [id, step, `Step ${step}`, state(step), token],
      });
      if (step >= 20) samples.push(performance.now() - t0);
    }
    return samples;
  } finally {
    await c.end();
  }
}

/** The orchestrator's own (non-internal) triggers on the tables a step commit writes. */
export async function stepTableTriggers(url: string): Promise<{ table: string; name: string }[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ table: string; name: string }>(
      `SELECT t.tgrelid::regclass::text AS table, t.tgname AS name
         FROM pg_trigger t
        WHERE t.tgrelid IN ('orchestrator.processes'::regclass, 'orchestrator.process_steps'::regclass)
          AND NOT t.tgisinternal
        ORDER BY 1, 2`,
    );
    return rows;
  } finally {
    await c.end();
  }
}

/**
 * Runs `fn` with every non-internal trigger of `orchestrator.processes` and
 * `orchestrator.process_steps` disabled (the status counters, and the live-event NOTIFY triggers
 * where this build still has them; foreign keys stay), and enables them again after. The
 * benchmark's own database only, with nothing else running on it.
 */
export async function withoutTriggers<T>(url: string, fn: () => Promise<T>): Promise<T> {
  const triggers = await stepTableTriggers(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const toggle = async (on: boolean) => {
    for (const t of triggers)
      await c.query(
        `ALTER TABLE ${t.table} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER ${pg.escapeIdentifier(t.name)}`,
      );
  };
  try {
    await toggle(false);
    return await fn();
  } finally {
    await toggle(true);
    await c.end();
  }
}

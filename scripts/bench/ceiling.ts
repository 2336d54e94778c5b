// Item 1, the ceiling: the shape of a step commit (insert a step row with a ~200-byte state,
// update the process row, one statement = one transaction), run directly with `pg` at 16
// connections on the orchestrator's own tables and indexes.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

const CONNECTIONS = 16;
const STATE = { payload: 'x'.repeat(180), n: 0 };

const COMMIT = `WITH p AS (
    UPDATE orchestrator.processes
       SET step_index = $2, last_step = $3, status = 'running', last_modified_at = now(),
           lease_expires_at = now() + make_interval(secs => 30)
     WHERE id = $1 AND lease_token = $5
    RETURNING id)
  INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
  SELECT id, $2, $3, 'success', $4, now() FROM p`;

/** Commits per second over `durationMs`, each connection advancing its own process. */
export async function measureCeiling(url: string, durationMs: number): Promise<number> {
  const clients = await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const c = new pg.Client({ connectionString: url, application_name: 'bench-ceiling' });
      await c.connect();
      return c;
    }),
  );
  try {
    const ids = clients.map(() => randomUUID());
    const token = randomUUID();
    await clients[0]!.query(
      `INSERT INTO orchestrator.processes (id, workflow_name, status, target, lease_token, lease_owner)
       SELECT unnest($1::uuid[]), 'ceiling', 'running', 'modify', $2, 'bench'`,
      [ids, token],
    );
    let commits = 0;
    const started = performance.now();
    const end = started + durationMs;
    await Promise.all(
      clients.map(async (c, i) => {
        for (let step = 0; performance.now() < end; step++) {
          await c.query({
            name: 'ceiling-commit',
            text: COMMIT,
            values: [ids[i], step, `Step ${step}`, JSON.stringify({ ...STATE, n: step }), token],
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
  const c = new pg.Client({ connectionString: url, application_name: 'bench-ceiling' });
  await c.connect();
  try {
    const id = randomUUID();
    const token = randomUUID();
    await c.query(
      `INSERT INTO orchestrator.processes (id, workflow_name, status, target, lease_token, lease_owner)
       VALUES ($1, 'ceiling', 'running', 'modify', $2, 'bench')`,
      [id, token],
    );
    const samples: number[] = [];
    for (let step = 0; step < count + 20; step++) {
      const t0 = performance.now();
      await c.query({
        name: 'ceiling-commit',
        text: COMMIT,
        values: [id, step, `Step ${step}`, JSON.stringify({ ...STATE, n: step }), token],
      });
      if (step >= 20) samples.push(performance.now() - t0);
    }
    return samples;
  } finally {
    await c.end();
  }
}

/**
 * The ceiling with the live-event NOTIFY triggers of the step tables switched off for the
 * measurement: what per-step NOTIFY costs (a notifying commit holds Postgres's notify-queue lock
 * through its commit, so notifying commits do not overlap). The benchmark's database only.
 */
export async function measureCeilingWithoutNotify(
  url: string,
  durationMs: number,
): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ tbl: string; name: string }>(
    `SELECT t.tgrelid::regclass::text AS tbl, t.tgname AS name
       FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid
      WHERE t.tgrelid IN ('orchestrator.processes'::regclass, 'orchestrator.process_steps'::regclass)
        AND NOT t.tgisinternal AND f.proname LIKE 'notify%'`,
  );
  const toggle = async (on: boolean) => {
    for (const r of rows)
      await c.query(`ALTER TABLE ${r.tbl} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER ${r.name}`);
  };
  try {
    await toggle(false);
    return await measureCeiling(url, durationMs);
  } finally {
    await toggle(true);
    await c.end();
  }
}

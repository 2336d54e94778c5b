// `node scripts/bench/events-design.ts`: the live-event designs measured against each other on the
// step-shaped commit of the ceiling (16 connections, 3 s each, embedded Postgres, fsync on):
//   none      no event at all (the ceiling)
//   in-commit a NOTIFY inside every commit, from a row trigger (the design of sql/003)
//   after     the commit, then its event handed to one publisher connection with
//             synchronous_commit = off that sends what arrived meanwhile in one NOTIFY
//             (src/db/events.ts, the design in use)
// and a listener that counts what it receives. Prints commits/s and events/s per design.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { silentLogger } from '../../src/config/logger.ts';
import { createEventPublisher, EVENTS_CHANNEL, type LiveEvent } from '../../src/db/events.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { freePort } from '../support/ports.ts';
import { CEILING_COMMIT, CEILING_CONNECTIONS, ceilingClients } from './ceiling.ts';

const DURATION_MS = Number(process.env.DURATION_MS ?? 3_000);
const STATE = JSON.stringify({ payload: 'x'.repeat(180) });

type Design = 'none' | 'in-commit' | 'after';

async function measure(url: string, design: Design): Promise<{ commits: number; events: number }> {
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  let events = 0;
  listener.on('notification', (m) => {
    const b = JSON.parse(m.payload ?? '{}') as { e?: unknown[] };
    events += b.e ? b.e.length : 1;
  });
  await listener.query(`LISTEN ${EVENTS_CHANNEL}`);
  const publisher =
    design === 'after'
      ? createEventPublisher({ connectionString: url, logger: silentLogger })
      : undefined;
  await publisher?.start();
  const { clients, ids, token } = await ceilingClients(url, CEILING_CONNECTIONS);
  if (design === 'in-commit') {
    await clients[0]!.query(`CREATE TRIGGER bench_notify AFTER INSERT ON orchestrator.process_steps
      FOR EACH ROW EXECUTE FUNCTION public.bench_notify()`);
  }
  const event: LiveEvent = { type: 'engine', globalLock: false };
  let commits = 0;
  const end = performance.now() + DURATION_MS;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c, i) => {
      for (let step = 0; performance.now() < end; step++) {
        const values = [ids[i], step, `Step ${step}`, STATE, token];
        await c.query({ name: 'commit', text: CEILING_COMMIT, values });
        publisher?.publish([event]);
        commits++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (design === 'in-commit')
    await clients[0]!.query(`DROP TRIGGER bench_notify ON orchestrator.process_steps`);
  await publisher?.stop();
  await new Promise((r) => setTimeout(r, 200));
  await Promise.all(clients.map((c) => c.end()));
  await listener.end();
  return { commits: commits / seconds, events: events / seconds };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-events-design-'));
fs.chmodSync(dir, 0o755);
const db = await startEmbeddedPostgres({
  dataDir: dir,
  port: await freePort(),
  logger: silentLogger,
  postgresFlags: ['-c', 'max_connections=100'],
});
try {
  await runMigrations(db.connectionString);
  // The per-row NOTIFY of the earlier design (sql/003), payload of the same size.
  const admin = new pg.Client({ connectionString: db.connectionString });
  await admin.connect();
  await admin.query(`CREATE FUNCTION public.bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('${EVENTS_CHANNEL}', json_build_object('type', 'step', 'id', NEW.id,
        'processId', NEW.process_id, 'index', NEW.step_index, 'name', NEW.name,
        'status', NEW.status, 'startedAt', NEW.started_at, 'completedAt', NEW.completed_at)::text);
      RETURN NULL;
    END $$`);
  await admin.end();
  for (let run = 0; run < 3; run++) {
    for (const design of ['none', 'in-commit', 'after'] as const) {
      const r = await measure(db.connectionString, design);
      process.stdout.write(
        `${design.padEnd(10)} ${r.commits.toFixed(0).padStart(6)} commits/s  ${r.events.toFixed(0).padStart(6)} events/s\n`,
      );
    }
  }
} finally {
  await db.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

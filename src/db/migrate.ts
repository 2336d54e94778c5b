import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { migrate } from 'postgres-migrations';
import { projectRoot } from '../config/index.ts';

export const migrationsDir = path.join(projectRoot, 'sql');

/**
 * Installs (or upgrades) pg-boss's schema `pgboss` on `client`. Runs before our migrations,
 * whatever the executor, because views in sql/ read `pgboss.job`; pg-boss takes its own advisory
 * lock, so instances starting together install it once.
 */
async function installQueueSchema(client: pg.Client): Promise<void> {
  const boss = new PgBoss({
    db: { executeSql: (text, values) => client.query(text, values) },
    supervise: false,
    schedule: false,
  });
  boss.on('error', () => {});
  await boss.start();
  await boss.stop({ graceful: false, close: false });
}

/**
 * Landed migrations whose text was rewritten so that they run on more servers, each with the hash
 * (postgres-migrations: sha1 of file name and text) of the text databases applied before. Such a
 * rewrite never changes what the migration does where the old text ran; a database that applied
 * the old text is moved to the new hash before the hashes are checked.
 */
const REWRITTEN: Readonly<Record<string, string>> = {
  // PostgreSQL 13 has no column COMPRESSION: its ALTERs became dynamic SQL, so that their syntax
  // error is caught like lz4's absence.
  '005_events_after_commit.sql': '5d63bb5084bcb10e14404b9a82f9f34a1e3333a0',
};

async function acceptRewrittenMigrations(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ exists: boolean }>(
    `SELECT to_regclass('public.migrations') IS NOT NULL AS exists`,
  );
  if (!rows[0]?.exists) return;
  for (const [file, before] of Object.entries(REWRITTEN)) {
    const text = fs.readFileSync(path.join(migrationsDir, file), 'utf8');
    const now = createHash('sha1')
      .update(file + text, 'utf8')
      .digest('hex');
    await client.query(`UPDATE public.migrations SET hash = $1 WHERE hash = $2`, [now, before]);
  }
}

/**
 * Applies pg-boss's schema, then the numbered migrations in sql/ (postgres-migrations holds an
 * advisory lock, so two instances starting together apply them once). A landed file that was
 * edited fails here.
 */
export async function runMigrations(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, application_name: 'orchestrator-migrate' });
  await client.connect();
  try {
    await installQueueSchema(client);
    await acceptRewrittenMigrations(client);
    await migrate({ client }, migrationsDir);
  } finally {
    await client.end();
  }
}

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
 * Applies pg-boss's schema, then the numbered migrations in sql/ (postgres-migrations holds an
 * advisory lock, so two instances starting together apply them once). A landed file that was
 * edited fails here.
 */
export async function runMigrations(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, application_name: 'orchestrator-migrate' });
  await client.connect();
  try {
    await installQueueSchema(client);
    await migrate({ client }, migrationsDir);
  } finally {
    await client.end();
  }
}

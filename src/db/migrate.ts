import path from 'node:path';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { migrate } from 'postgres-migrations';
import { projectRoot } from '../config/index.ts';

export const migrationsDir = path.join(projectRoot, 'sql');

/**
 * Installs (or upgrades) pg-boss's schema `pgboss`. Runs before our migrations, whatever the
 * executor, because views in sql/ read `pgboss.job`; pg-boss takes its own advisory lock, so
 * instances starting together install it once.
 */
async function installQueueSchema(connectionString: string): Promise<void> {
  const boss = new PgBoss({
    connectionString,
    max: 2,
    supervise: false,
    schedule: false,
    application_name: 'orchestrator-migrate',
  });
  boss.on('error', () => {});
  await boss.start();
  await boss.stop({ graceful: false, close: true });
}

/**
 * Applies pg-boss's schema, then the numbered migrations in sql/ (postgres-migrations holds an
 * advisory lock, so two instances starting together apply them once). A landed file that was
 * edited fails here.
 */
export async function runMigrations(connectionString: string): Promise<void> {
  await installQueueSchema(connectionString);
  const client = new pg.Client({ connectionString, application_name: 'orchestrator-migrate' });
  await client.connect();
  try {
    await migrate({ client }, migrationsDir);
  } finally {
    await client.end();
  }
}

import path from 'node:path';
import pg from 'pg';
import { migrate } from 'postgres-migrations';
import { projectRoot } from '../config/index.ts';

export const migrationsDir = path.join(projectRoot, 'sql');

/**
 * Applies the numbered migrations in sql/ (postgres-migrations holds an advisory lock, so two
 * instances starting together apply them once). A landed file that was edited fails here.
 */
export async function runMigrations(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, application_name: 'orchestrator-migrate' });
  await client.connect();
  try {
    await migrate({ client }, migrationsDir);
  } finally {
    await client.end();
  }
}

import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import type { Queryable } from '../../src/db/pool.ts';
import { insertProcess, type NewProcess } from '../../src/db/step-writes.ts';

/** Migrated once per run by global-setup; cloned per test file. */
export const TEMPLATE_DB = 'orchestrator_template';

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface TestDatabase {
  url: string;
  name: string;
  /** A pool on the test database for assertions. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated database cloned from the run's template: one per test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Inserts a `created` process row directly (no API, no dispatch), for tests that set up states by
 * hand. Defaults: workflow `noop`, target `modify`, a workflow (not a task), no input.
 */
export async function seedProcess(
  db: Queryable,
  fields: Partial<NewProcess> = {},
): Promise<string> {
  const id = fields.id ?? randomUUID();
  await insertProcess(db, {
    workflowName: 'noop',
    target: 'modify',
    isTask: false,
    createdBy: null,
    input: {},
    ...fields,
    id,
  });
  return id;
}

// Databases for tests, on any server a test may create databases on: a migrated template per
// server and schema version, and fresh clones of it. One mechanism for the project's own suite
// (test/support) and for the test kit that workflow authors use (src/testing.ts).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { migrationsDir, runMigrations } from './migrate.ts';

/** A connection string to `database` on the server of `url`. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The schema version: the migrations and the queue library that installs its own schema. */
function schemaVersion(): string {
  const hash = createHash('sha256');
  for (const file of fs.readdirSync(migrationsDir).sort()) {
    hash.update(file).update(fs.readFileSync(path.join(migrationsDir, file)));
  }
  try {
    const req = createRequire(import.meta.url);
    hash.update((req('pg-boss/package.json') as { version: string }).version);
  } catch {
    // Without it, only the migrations name the template.
  }
  return hash.digest('hex').slice(0, 12);
}

/** Runs `fn` on a client of its own on `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'orchestrator-tests' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const templates = new Map<string, Promise<string>>();

/**
 * The migrated template on the server of `adminUrl`, made once per schema version: kept between
 * runs (a template marked as such is complete; one left half-made by a crash is made again).
 * Processes of one run (one per test file) make it once between them.
 */
export function migratedTemplate(adminUrl: string): Promise<string> {
  let made = templates.get(adminUrl);
  if (!made) {
    made = withClient(adminUrl, async (admin) => {
      const name = `orchestrator_template_${schemaVersion()}`;
      await admin.query(`SELECT pg_advisory_lock(hashtext('orchestrator-template'))`);
      try {
        const { rows } = await admin.query<{ datistemplate: boolean }>(
          `SELECT datistemplate FROM pg_database WHERE datname = $1`,
          [name],
        );
        if (rows[0]?.datistemplate) return name;
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.query(`CREATE DATABASE ${name}`);
        await runMigrations(withDatabase(adminUrl, name));
        await admin.query(`ALTER DATABASE ${name} IS_TEMPLATE true`);
        return name;
      } finally {
        await admin.query(`SELECT pg_advisory_unlock(hashtext('orchestrator-template'))`);
      }
    });
    templates.set(adminUrl, made);
    made.catch(() => templates.delete(adminUrl));
  }
  return made;
}

export interface ClonedDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database on the server of `adminUrl`, cloned from its template. */
export async function cloneDatabase(adminUrl: string, prefix = 'test'): Promise<ClonedDatabase> {
  const template = await migratedTemplate(adminUrl);
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop: async () => {
      await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

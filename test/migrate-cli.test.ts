// `npm run migrate`: applies pg-boss's schema and sql/ to an empty database, again as a no-op,
// and fails with a clear message and exit code 1 when the database cannot be reached.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';
import { freePort } from './support/ports.ts';
import { spawnNode } from './support/spawn.ts';

// An empty database, nothing migrated: what `npm run migrate` starts from.
const h = useHarness({ database: 'empty' });

describe('npm run migrate', () => {
  it('migrates an empty database, and a second run changes nothing', async () => {
    const url = h.db.url;
    const first = spawnNode('src/cli/migrate.ts', [], { DATABASE_URL: url });
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('migrations applied');

    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const tables = await c.query<{ t: string }>(
        `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables
          WHERE table_schema IN ('orchestrator', 'pgboss') AND table_name IN ('processes', 'job')`,
      );
      expect(tables.rows.map((r) => r.t).sort()).toEqual(['orchestrator.processes', 'pgboss.job']);
      const applied = await c.query(`SELECT count(*)::int AS n FROM migrations`);
      const second = spawnNode('src/cli/migrate.ts', [], { DATABASE_URL: url });
      expect(await second.exited).toBe(0);
      expect((await c.query(`SELECT count(*)::int AS n FROM migrations`)).rows).toEqual(
        applied.rows,
      );
    } finally {
      await c.end();
    }
  });

  it('accepts a database that applied a landed migration before its text was rewritten', async () => {
    // 005 was rewritten to run on PostgreSQL 13; databases that applied its first text hold
    // that text's hash, and must still start.
    const url = h.db.url;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(
        `UPDATE migrations SET hash = '5d63bb5084bcb10e14404b9a82f9f34a1e3333a0'
          WHERE name = 'events_after_commit'`,
      );
      const p = spawnNode('src/cli/migrate.ts', [], { DATABASE_URL: url });
      expect(await p.exited).toBe(0);
      const { rows } = await c.query(
        `SELECT hash FROM migrations WHERE name = 'events_after_commit'`,
      );
      expect(rows[0].hash).not.toBe('5d63bb5084bcb10e14404b9a82f9f34a1e3333a0');
      // Any other hash is an edited migration, refused as ever.
      await c.query(`UPDATE migrations SET hash = 'edited' WHERE name = 'events_after_commit'`);
      const refused = spawnNode('src/cli/migrate.ts', [], { DATABASE_URL: url });
      expect(await refused.exited).toBe(1);
      expect(refused.output()).toMatch(/Hashes don't match/);
    } finally {
      await c.end();
    }
  });

  it('fails with exit code 1 and a clear message when the database is unreachable', async () => {
    const url = `postgres://postgres:x@127.0.0.1:${await freePort()}/none`;
    const p = spawnNode('src/cli/migrate.ts', [], { DATABASE_URL: url });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/migrations failed: .*ECONNREFUSED/);
  });
});

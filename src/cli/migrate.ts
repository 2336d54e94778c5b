// Entry point of `npm run migrate`: applies pg-boss's schema and the migrations in sql/ to
// DATABASE_URL (without it, to the embedded Postgres that `npm start` runs on this machine), then
// exits. `npm start` and workers do the same at start-up; this is for deploy pipelines that
// migrate first.
import { loadConfig } from '../config/index.ts';
import { embeddedConnectionString } from '../db/embedded.ts';
import { runMigrations } from '../db/migrate.ts';

try {
  const config = loadConfig();
  const url = config.DATABASE_URL ?? embeddedConnectionString(config.EMBEDDED_PG_PORT);
  await runMigrations(url);
  process.stdout.write('migrations applied\n');
} catch (err) {
  process.stderr.write(`migrations failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

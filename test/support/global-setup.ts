// Starts one Postgres for the whole run (embedded, or DATABASE_URL when given) and makes sure its
// migrated template exists; each test file clones it (src/db/templates.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { silentLogger } from '../../src/config/logger.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { migratedTemplate } from '../../src/db/templates.ts';
import { freePort } from './ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string to a maintenance database of the test cluster. */
    adminUrl: string;
  }
}

export default async function setup(project: TestProject) {
  let adminUrl = process.env.DATABASE_URL;
  let stop = async () => {};
  let dir: string | undefined;
  if (!adminUrl) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-test-'));
    fs.chmodSync(dir, 0o755);
    const embedded = await startEmbeddedPostgres({
      dataDir: dir,
      port: await freePort(),
      logger: silentLogger,
      postgresFlags: [
        '-c',
        'max_connections=400',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        // Observes which statements ran and how (test/plans.test.ts); changes no plan.
        '-c',
        'shared_preload_libraries=pg_stat_statements',
      ],
    });
    adminUrl = embedded.connectionString;
    stop = embedded.stop;
  }
  await migratedTemplate(adminUrl);
  project.provide('adminUrl', adminUrl);
  return async () => {
    await stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };
}

// A Postgres cluster of one's own (embedded, in a temporary folder): for suites that stop and start
// their database on purpose, which the shared test cluster must never do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/config/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { freePort } from './ports.ts';

export interface OwnClusterOptions {
  /** Part of the temporary folder's name. */
  name: string;
  /** Extra `postgres` flags, e.g. `['-c', 'max_connections=300']`. */
  flags?: string[];
  /** Apply the migrations after every start. Default true. */
  migrate?: boolean;
}

/** Restartable on the same port and data: `url` stays valid across restarts. */
export class OwnCluster {
  url = '';
  readonly #opts: OwnClusterOptions;
  #dir = '';
  #port = 0;
  #db: EmbeddedDatabase | undefined;

  constructor(opts: OwnClusterOptions) {
    this.#opts = opts;
  }

  get running(): boolean {
    return this.#db !== undefined;
  }

  async start(): Promise<void> {
    if (!this.#dir) {
      this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), `orchestrator-${this.#opts.name}-`));
      fs.chmodSync(this.#dir, 0o755);
      this.#port = await freePort();
    }
    this.#db = await startEmbeddedPostgres({
      dataDir: this.#dir,
      port: this.#port,
      logger: silentLogger,
      postgresFlags: this.#opts.flags ?? [],
    });
    this.url = this.#db.connectionString;
    if (this.#opts.migrate ?? true) await runMigrations(this.url);
  }

  async stop(): Promise<void> {
    await this.#db?.stop();
    this.#db = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.#dir) fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

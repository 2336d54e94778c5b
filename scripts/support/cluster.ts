// A Postgres cluster of one's own (embedded, in a temporary folder, or another server of
// scripts/test-server.sh): for suites that stop and start their database on purpose, which the
// shared test cluster must never do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/config/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { freePort } from './ports.ts';
import { startTestServer, type ServerSpec, type TestServer } from './test-server.ts';

export interface OwnClusterOptions {
  /** Part of the temporary folder's name. */
  name: string;
  /** Extra `postgres` flags of the embedded server, e.g. `['-c', 'max_connections=300']`. */
  flags?: string[];
  /**
   * Another server (`stock`, `embedded:13`, see test-server.ts), with its own configuration:
   * `flags` do not apply. Default: the project's embedded Postgres.
   */
  server?: ServerSpec;
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
  #server: TestServer | undefined;

  constructor(opts: OwnClusterOptions) {
    this.#opts = opts;
  }

  get running(): boolean {
    return this.#db !== undefined;
  }

  /** What it runs on, for reports. */
  get describe(): string {
    return this.#server?.describe ?? 'embedded PostgreSQL';
  }

  async start(): Promise<void> {
    if (this.#opts.server && this.#opts.server !== 'embedded') {
      if (this.#server) await this.#server.up();
      else this.#server = await startTestServer(this.#opts.server);
      const server = this.#server;
      this.url = server.url;
      this.#db = { connectionString: server.url, stop: () => server.down() };
      if (this.#opts.migrate ?? true) await runMigrations(this.url);
      return;
    }
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
    await this.#server?.stop();
    if (this.#dir) fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

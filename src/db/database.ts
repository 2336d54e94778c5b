import type { Config } from '../config/index.ts';
import type { Logger } from '../config/logger.ts';
import { lockDataDir, startEmbeddedPostgres } from './embedded.ts';
import { runMigrations } from './migrate.ts';

export interface Database {
  connectionString: string;
  /** Stops the embedded Postgres (when this process started it) and releases its lock. */
  close(): Promise<void>;
}

/**
 * The database to use: `DATABASE_URL`, or an embedded Postgres in `DATA_DIR` owned by this
 * process. Migrations are applied either way.
 */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.DATABASE_URL) {
    await runMigrations(config.DATABASE_URL);
    return { connectionString: config.DATABASE_URL, close: async () => {} };
  }
  const unlock = lockDataDir(config.DATA_DIR);
  try {
    const embedded = await startEmbeddedPostgres({
      dataDir: config.DATA_DIR,
      port: config.EMBEDDED_PG_PORT,
      logger,
      postgresFlags: ['-c', 'max_connections=200'],
    }).catch((err: unknown) => {
      throw new Error(
        `Could not start the embedded Postgres on port ${config.EMBEDDED_PG_PORT} with data in ${config.DATA_DIR}` +
          ` (is the port taken? set EMBEDDED_PG_PORT, or DATABASE_URL to use another database)` +
          (err ? `: ${String((err as Error).message ?? err)}` : ''),
      );
    });
    logger.info('embedded Postgres running', {
      url: embedded.connectionString.replace(/:[^:@/]+@/, ':***@'),
    });
    await runMigrations(embedded.connectionString);
    return {
      connectionString: embedded.connectionString,
      async close() {
        await embedded.stop();
        unlock();
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

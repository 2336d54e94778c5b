// What the API has seen of its database refusing writes, for `/api/health`: a disk that is full
// shows only when something tries to write (reads and `SELECT 1` still answer), so the health
// check reports the refusals the operations met, until a write goes through again.
import { isDiskFull } from '../db/pool.ts';

export interface DatabaseWatch {
  /** An operation failed on a refusal of the database (see databaseRefusal in errors.ts). */
  refused(err: unknown): void;
  /** An operation that writes succeeded: the database writes again. */
  wrote(): void;
  /** `database_full` while the last write refused for a full disk is recent and none passed since. */
  condition(): 'database_full' | undefined;
}

/**
 * `forgetAfterMs`: a refusal older than this no longer counts (with no write tried since, nothing
 * says whether the disk is still full). Default 60 s.
 */
export function createDatabaseWatch(forgetAfterMs = 60_000): DatabaseWatch {
  let fullAt: number | undefined;
  return {
    refused(err) {
      if (isDiskFull(err)) fullAt = Date.now();
    },
    wrote() {
      fullAt = undefined;
    },
    condition() {
      if (fullAt !== undefined && Date.now() - fullAt > forgetAfterMs) fullAt = undefined;
      return fullAt === undefined ? undefined : 'database_full';
    },
  };
}

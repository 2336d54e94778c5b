import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Queryable } from '../../src/db/pool.ts';
import {
  claimProcesses,
  heartbeatLeases,
  insertProcesses,
  type Claim,
  type NewProcess,
} from '../../src/db/leases.ts';

export { withDatabase } from '../../src/db/templates.ts';

export interface TestDatabase {
  url: string;
  name: string;
  /** A pool on the test database for assertions. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

/**
 * Inserts a `created` process row directly (no API, no dispatch), for tests that set up states by
 * hand. Defaults: workflow `noop`, target `modify`, a workflow (not a task), no input.
 */
export async function seedProcess(
  db: Queryable,
  fields: Partial<NewProcess> = {},
): Promise<string> {
  const p = seeded(fields);
  await insertProcesses(db, [p]);
  return p.id;
}

/** A process to insert: `fields` over the defaults of seedProcess, with an id. */
const seeded = (fields: Partial<NewProcess>): NewProcess => ({
  workflowName: 'noop',
  target: 'modify',
  isTask: false,
  createdBy: null,
  input: {},
  ...fields,
  id: fields.id ?? randomUUID(),
});

/**
 * Inserts a process already `running` with a lease, as the threadpool starts one (claimed at
 * insert), without running it: its lease is the caller's to beat, commit or lose.
 */
export async function seedLeased(
  db: Queryable,
  lease: { owner: string; leaseSeconds: number },
  fields: Partial<NewProcess> = {},
): Promise<{ id: string; leaseToken: string }> {
  const p = seeded({ ...fields, lease });
  const [inserted] = await insertProcesses(db, [p]);
  if (!inserted?.claim) throw new Error('not inserted: the engine is paused');
  return { id: p.id, leaseToken: inserted.claim.leaseToken };
}

/** Claims one process as a runner would (see claimProcesses); undefined when someone else has it. */
export async function claimProcess(
  db: Queryable,
  id: string,
  owner: string,
  leaseSeconds: number,
): Promise<Claim | undefined> {
  return (await claimProcesses(db, [id], owner, leaseSeconds))[0];
}

/** Extends one lease as a runner's heartbeat would; false when it was lost. */
export async function heartbeat(
  db: Queryable,
  id: string,
  leaseToken: string,
  leaseSeconds: number,
): Promise<boolean> {
  return (await heartbeatLeases(db, [{ id, leaseToken }], leaseSeconds)).length === 0;
}

import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkInvariants } from '../src/db/invariants.ts';
import { loadRegistry, type Registry } from '../src/engine/registry.ts';
import { createTestDatabase, seedProcess, type TestDatabase } from './support/database.ts';
import { root } from './support/paths.ts';

let db: TestDatabase;
let registry: Registry;

beforeAll(async () => {
  db = await createTestDatabase();
  registry = await loadRegistry(`${root}/workflows`);
});
afterAll(() => db?.drop());

async function proc(status: string, stepIndex: number, rows: [number, string][], extra = '') {
  const id = await seedProcess(db.pool);
  await db.pool.query(
    `UPDATE orchestrator.processes SET status = $2, step_index = $3 ${extra} WHERE id = $1`,
    [id, status, stepIndex],
  );
  for (const [index, st] of rows) {
    await db.pool.query(
      `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
       VALUES ($1, $2, 'x', $3, '{}', now())`,
      [id, index, st],
    );
  }
  return id;
}

it('finds nothing wrong in consistent data and each kind of corruption in broken data', async () => {
  await proc('completed', 3, [
    [0, 'success'],
    [1, 'skipped'],
    [2, 'success'],
  ]);
  await proc('failed', 1, [
    [0, 'success'],
    [1, 'failed'],
  ]);
  await proc('created', 0, []);
  expect(await checkInvariants(db.pool, { registry })).toEqual([]);

  const gap = await proc('completed', 3, [
    [0, 'success'],
    [2, 'success'],
  ]);
  const outOfOrder = await proc(
    'running',
    2,
    [
      [1, 'success'],
      [0, 'success'],
    ],
    `, lease_token = gen_random_uuid()`,
  );
  const noLease = await proc('running', 0, []);
  const abandoned = await proc(
    'running',
    0,
    [],
    `, lease_token = gen_random_uuid(), lease_expires_at = now() - interval '1 hour'`,
  );
  const suspendedWrong = await proc('suspended', 1, [[0, 'success']]);
  const failedKeepsLease = await proc(
    'failed',
    0,
    [[0, 'failed']],
    `, lease_token = gen_random_uuid()`,
  );
  const found = await checkInvariants(db.pool, { registry });
  const by = (id: string) => found.filter((v) => v.processId === id).map((v) => v.invariant);
  expect(by(gap)).toEqual(['steps committed in order']);
  expect(by(outOfOrder)).toEqual(['steps committed in order']);
  expect(by(noLease)).toEqual(['status fits steps']);
  expect(by(abandoned)).toEqual(['no abandoned lease']);
  expect(by(suspendedWrong)).toEqual(['status fits steps']);
  expect(by(failedKeepsLease)).toEqual(['status fits steps']);
});

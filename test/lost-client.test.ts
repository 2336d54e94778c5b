// A client of the database lost mid-transaction without a FIN (a worker or an API cut off by the
// network): its session stays `idle in transaction` on the server, holding the rows it wrote. The
// server must end it within DB_IDLE_IN_TRANSACTION_TIMEOUT_MS, an operation on a row it holds must
// fail fast (DB_LOCK_TIMEOUT_MS) with a code instead of hanging, and the API must keep answering
// its health check, its reads and other starts while such operations pile up.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.ts';
import { silentLogger } from '../src/config/logger.ts';
import { heartbeatLeases } from '../src/db/leases.ts';
import { createPool, sessionLimitsOf, type Pool, type PoolClient } from '../src/db/pool.ts';
import { startFreezingProxy, type FreezingProxy } from '../scripts/support/freezing-proxy.ts';
import { devices, portsOf } from '../workflows/_inventory.ts';
import { seedLeased } from './support/database.ts';
import { useHarness } from './support/harness.ts';

// Small bounds, through the configuration as a deployment sets them. The lock timeout is well
// below the idle-in-transaction one, so that every abort below meets the lost session's lock.
const env = {
  DB_LOCK_TIMEOUT_MS: '1000',
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '9000',
  DB_POOL_SIZE: '4',
};
const h = useHarness({ executor: 'threadpool', env });

let proxy: FreezingProxy;
let lostPool: Pool;
beforeAll(async () => {
  const db = new URL(h.db.url);
  proxy = await startFreezingProxy({ host: db.hostname, port: Number(db.port) });
  // A session of the engine as the API and the workers open theirs (the same settings), through
  // the proxy.
  lostPool = createPool({
    connectionString: proxy.urlFor(h.db.url),
    max: 1,
    logger: silentLogger,
    applicationName: 'orchestrator-lost-client',
    limits: sessionLimitsOf(loadConfig({ ...env, DATABASE_URL: h.db.url })),
  });
});
afterAll(async () => {
  await proxy.close();
  await lostPool.end();
});

/** A request that fails the test instead of hanging past `ms`. */
async function timed<T>(what: string, call: Promise<T>, ms: number): Promise<T & { ms: number }> {
  const started = Date.now();
  const out = await Promise.race([
    call,
    sleep(ms).then(() => {
      throw new Error(`${what} did not answer within ${ms} ms`);
    }),
  ]);
  return Object.assign(out as object, { ms: Date.now() - started }) as T & { ms: number };
}

const sessions = () =>
  h.db.pool.query<{ pid: number; state: string }>(
    `SELECT pid, state FROM pg_stat_activity WHERE application_name = 'orchestrator-lost-client'`,
  );

it('ends a session lost mid-transaction, and nothing waits on it meanwhile', async () => {
  const { http } = h;
  const id = await http.start('hello', { name: 'lost' });
  await http.waitForStatus(id, 'suspended');

  // The lost client writes the process's row in a transaction, as a runner's commit would, and
  // takes a device's resource key, as a start would; it is cut off before its COMMIT arrives: no
  // FIN, the server keeps the session.
  const device = devices()[0];
  const lost: PoolClient = await lostPool.connect();
  lost.on('error', () => undefined);
  await lost.query('BEGIN');
  await lost.query(`UPDATE orchestrator.processes SET last_modified_at = now() WHERE id = $1`, [
    id,
  ]);
  await lost.query(`INSERT INTO orchestrator.resource_locks (key, process_id) VALUES ($1, $2)`, [
    `device:${device}`,
    id,
  ]);
  proxy.freeze();
  const commit = lost.query('COMMIT').catch((err: unknown) => err);
  await sleep(200);
  const frozenAt = Date.now();
  expect((await sessions()).rows.map((r) => r.state)).toEqual(['idle in transaction']);

  // Twelve aborts of it at once, more than the pool holds: each fails fast with a code.
  const aborts = Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      timed(`abort ${i}`, http.put(`/api/processes/${id}/abort`), 10_000),
    ),
  );
  await sleep(300);
  // Meanwhile the health check, the list, a process and a start of another workflow answer.
  const provision = [{ device }, { port: portsOf(device)[0] }];
  const [health, list, one, started, sameKey] = await Promise.all([
    timed('health', http.get('/api/health'), 1_500),
    timed('list', http.get('/api/processes?limit=5'), 1_500),
    timed('process', http.get(`/api/processes/${id}`), 1_500),
    timed('start', http.post('/api/processes/noop', {}), 8_000),
    // A start on the key the lost session took: refused fast, not left waiting on it.
    timed('start on the key', http.post('/api/processes/provision_port', provision), 8_000),
  ]);
  expect(health.status).toBe(200);
  expect(list.status).toBe(200);
  expect(one.status).toBe(200);
  expect(one.body.status).toBe('suspended');
  expect(started.status).toBe(201);
  expect(sameKey.status).toBe(503);
  expect(sameKey.body.error.code).toBe('database_locked');

  const answered = await aborts;
  for (const a of answered) {
    expect(a.status).toBe(503);
    expect(a.body.error.code).toBe('database_locked');
  }
  // Each waited about the lock timeout; with 4 connections, three rounds of them.
  expect(Math.max(...answered.map((a) => a.ms))).toBeLessThan(8_000);
  // The reads did not wait for the aborts.
  expect(Math.max(health.ms, list.ms, one.ms)).toBeLessThan(Math.max(...answered.map((a) => a.ms)));
  await http.waitForStatus(started.body.id, 'completed');

  // The server ends the lost session once it sat idle in its transaction for the bound: its
  // transaction rolled back, its locks released.
  await expect
    .poll(async () => (await sessions()).rowCount, { timeout: 15_000, interval: 200 })
    .toBe(0);
  // Ended by its bound (9 s idle in its transaction, which began a moment before the freeze).
  expect(Date.now() - frozenAt).toBeGreaterThan(7_000);
  const { rows: locks } = await h.db.pool.query(
    `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE a.application_name = 'orchestrator-lost-client'`,
  );
  expect(locks).toEqual([]);
  // Its write never committed, and the process can be aborted now.
  expect((await http.put(`/api/processes/${id}/abort`)).status).toBe(204);
  expect((await http.get(`/api/processes/${id}`)).body.status).toBe('aborted');
  // The key it took was never given: a start on it goes through.
  const provisioned = await http.start('provision_port', provision);
  await http.waitForStatus(provisioned, 'suspended');
  expect((await http.put(`/api/processes/${provisioned}/abort`)).status).toBe(204);

  // The lost client learns of it once the network is back (or its keepalive gives up).
  proxy.thaw();
  expect(await timed('the COMMIT', commit, 5_000)).toBeInstanceOf(Error);
  lost.release(true);
});

it("a runner's heartbeat skips a row another session holds, and keeps its other leases", async () => {
  const ids = [randomUUID(), randomUUID()];
  const lease = { owner: 'heartbeat-test', leaseSeconds: 5 };
  const leases = await Promise.all(ids.map((id) => seedLeased(h.db.pool, lease, { id })));
  const holder = await h.db.pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM orchestrator.processes WHERE id = $1 FOR UPDATE`, [ids[0]]);
    // Without a lock timeout of its own: a heartbeat that waited for the row would never answer.
    const lost = await timed('the heartbeat', heartbeatLeases(h.db.pool, leases, 600), 3_000);
    expect([...lost]).toEqual([]);
    const { rows } = await h.db.pool.query<{ id: string; extended: boolean }>(
      `SELECT id, lease_expires_at > now() + interval '60 seconds' AS extended
         FROM orchestrator.processes WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const extended = new Map(rows.map((r) => [r.id, r.extended]));
    expect(extended.get(ids[0]!)).toBe(false);
    expect(extended.get(ids[1]!)).toBe(true);
    await holder.query('ROLLBACK');
    // Free again: extended at the next beat, and nothing reported lost.
    expect([...(await heartbeatLeases(h.db.pool, leases, 600))]).toEqual([]);
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    holder.release();
    await h.db.pool.query(`DELETE FROM orchestrator.processes WHERE id = ANY($1::uuid[])`, [ids]);
  }
});

// Recovery under a backlog: after kill -9 of a runner, the processes it was running are continued
// within about one lease, ahead of a backlog far larger than what runs at once (threadpool: the
// restarted API; worker mode: another worker). Real processes, real Postgres.
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { seedProcess } from './support/database.ts';
import { useHarness, type Harness } from './support/harness.ts';
import { freePort } from './support/ports.ts';
import { spawnNode, waitForOutput, type Spawned } from './support/spawn.ts';
import { startWorkerModeApi, startWorkerProcess } from './support/workers.ts';

/** The database of the running suite: each suite has its own, and nothing else runs on it. */
let db: Harness['db'];

function ownDatabase(): void {
  // The processes left running sleep for minutes: no invariant check (the harness's default
  // without an executor); the processes started here are killed at the end.
  const h = useHarness();
  beforeAll(() => {
    db = h.db;
  });
}

const LEASE_SECONDS = 2;
const SWEEP_MS = (LEASE_SECONDS * 1000) / 2;
/** Steps that outlast the test: a slot taken by the backlog stays taken. */
const LONG = { sleepMs: 600_000 };
const ownerOf = (p: Spawned) => `:${p.child.pid}`;

/** Polls `probe` until it returns a value, or fails with the last `describe()` after `deadline`. */
async function until<T>(
  probe: () => Promise<T | undefined>,
  deadline: number,
  describe: () => Promise<string>,
): Promise<T> {
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(await describe());
    await sleep(50);
  }
}

interface Row {
  id: string;
  status: string;
  owner: string | null;
  stepIndex: number;
}

async function rows(ids: string[]): Promise<Row[]> {
  const r = await db.pool.query<Row>(
    `SELECT id, status, lease_owner AS owner, step_index AS "stepIndex"
       FROM orchestrator.processes WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return r.rows;
}

async function runningOwnedBy(p: Spawned): Promise<string[]> {
  const r = await db.pool.query<{ id: string }>(
    `SELECT id FROM orchestrator.processes
      WHERE status = 'running' AND lease_owner LIKE '%' || $1 AND lease_expires_at > now()`,
    [ownerOf(p)],
  );
  return r.rows.map((x) => x.id);
}

const countStatus = async (ids: string[], status: string) =>
  (await rows(ids)).filter((r) => r.status === status).length;

describe('threadpool: kill -9 of the API with a backlog', () => {
  ownDatabase();

  it('the restarted API continues the dead one’s processes within a lease, before the backlog', async () => {
    // More than the sweep's limit (500) stays behind after the restart took its share: the dead
    // instance's processes must not be left out of the sweep, nor queued behind the backlog.
    const total = 700;
    const maxRunning = 64; // the threadpool executor's default
    const ids: string[] = [];
    for (let i = 0; i < total; i += 50) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, () =>
            seedProcess(db.pool, { workflowName: 'slow', input: LONG }),
          ),
        )),
      );
    }
    // Started a while ago: older than the sweeper's grace period, as a real backlog is.
    await db.pool.query(
      `UPDATE orchestrator.processes SET last_modified_at = now() - interval '10 minutes'
        WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const env = { DATABASE_URL: db.url, LEASE_SECONDS: String(LEASE_SECONDS) };
    const listening = /orchestrator listening/;

    const first = spawnNode('src/cli/serve.ts', [], { ...env, PORT: String(await freePort()) });
    await waitForOutput(first, listening, 60_000);
    const dead = await until(
      async () => {
        const mine = await runningOwnedBy(first);
        return mine.length === maxRunning ? mine : undefined;
      },
      Date.now() + 30_000,
      async () => `the first API runs ${(await runningOwnedBy(first)).length}, not ${maxRunning}`,
    );
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const killedAt = Date.now();
    const backlog = ids.filter((id) => !dead.includes(id));
    expect(await countStatus(backlog, 'created')).toBe(total - maxRunning);

    const second = spawnNode('src/cli/serve.ts', [], { ...env, PORT: String(await freePort()) });
    await waitForOutput(second, listening, 60_000);
    const readyAt = Date.now();
    // The dead instance's leases expire at most one lease after the kill; the next sweep after
    // that (one interval) must take every one of them, whatever waits in the backlog.
    const deadline = Math.max(readyAt, killedAt + LEASE_SECONDS * 1000) + SWEEP_MS + 2_000;
    const recoveredAt = await until(
      async () => {
        const left = (await rows(dead)).filter((r) => r.owner?.endsWith(ownerOf(second)) !== true);
        return left.length === 0 ? Date.now() : undefined;
      },
      deadline,
      async () => {
        const now = await rows(dead);
        const left = now.filter((r) => r.owner?.endsWith(ownerOf(second)) !== true);
        return (
          `${left.length} of the ${dead.length} processes of the killed API not continued ` +
          `${Date.now() - killedAt} ms after the kill (restart ready after ${readyAt - killedAt} ms); ` +
          `e.g. ${JSON.stringify(left[0])}`
        );
      },
    );
    console.info(
      `threadpool: restart ready ${readyAt - killedAt} ms after kill -9, ` +
        `all ${dead.length} continued ${recoveredAt - killedAt} ms after it`,
    );
    // Each is held by one runner (the new one), still in its first step; most of the backlog
    // still waits: the restarted API started at most maxRunning of it.
    for (const r of await rows(dead)) expect(r).toMatchObject({ status: 'running', stepIndex: 0 });
    expect(await countStatus(backlog, 'created')).toBeGreaterThanOrEqual(total - 2 * maxRunning);
    expect(await runningOwnedBy(second)).toHaveLength(
      dead.length + (await countStatus(backlog, 'running')),
    );
  });
});

describe('worker mode: kill -9 of a worker with a backlog queued', () => {
  ownDatabase();

  it('another worker continues the dead one’s processes before the backlog', async () => {
    // One queue for new and resumed processes of the target (`slow` is `modify`): the backlog's
    // jobs and the sweeper's jobs for the expired leases wait in the same queue.
    const env = { LEASE_SECONDS: String(LEASE_SECONDS), TARGET_QUEUES: 'modify' };
    const { http } = await startWorkerModeApi(db.url, env);
    const concurrency = 4;
    const first = await startWorkerProcess(db.url, ['--concurrency', String(concurrency)], env);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await http.start('slow', LONG));
    const dead = await until(
      async () => {
        const mine = await runningOwnedBy(first);
        return mine.length === concurrency ? mine : undefined;
      },
      Date.now() + 30_000,
      async () => `the first worker runs ${(await runningOwnedBy(first)).length}`,
    );
    const backlog = ids.filter((id) => !dead.includes(id));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const killedAt = Date.now();

    // The API's sweeper queues the dead worker's processes again once their leases expired.
    const queuedJobs = async () =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(DISTINCT data->>'processId')::int AS n FROM pgboss.job
            WHERE name = 'modify' AND state = 'created' AND data->>'processId' = ANY($1::text[])`,
          [dead],
        )
      ).rows[0]!.n;
    await until(
      async () => ((await queuedJobs()) === dead.length ? true : undefined),
      killedAt + LEASE_SECONDS * 1000 + SWEEP_MS + 10_000,
      async () => `${await queuedJobs()} of ${dead.length} dead processes queued again`,
    );
    expect(await countStatus(backlog, 'created')).toBe(backlog.length);

    // A second worker with as many slots: it takes the dead worker's processes, not the backlog
    // queued before them.
    const second = await startWorkerProcess(db.url, ['--concurrency', String(concurrency)], env);
    await until(
      async () => ((await runningOwnedBy(second)).length === concurrency ? true : undefined),
      Date.now() + 15_000,
      async () => `the second worker runs ${(await runningOwnedBy(second)).length}`,
    );
    const ran = await runningOwnedBy(second);
    if (ran.some((id) => !dead.includes(id))) {
      // What the queue and the processes looked like, to tell why (printed when it fails).
      const jobs = await db.pool.query(
        `SELECT data->>'processId' AS process, state, priority, created_on, started_on, completed_on
           FROM pgboss.job WHERE data->>'processId' = ANY($1::text[]) ORDER BY created_on`,
        [[...dead, ...ran]],
      );
      const processes = await db.pool.query(
        `SELECT p.id, p.status, p.lease_owner, p.lease_expires_at, p.step_index, p.failed_reason,
                (SELECT s.error FROM orchestrator.process_steps s WHERE s.process_id = p.id
                  ORDER BY s.id DESC LIMIT 1) AS last_error
           FROM orchestrator.processes p WHERE p.id = ANY($1::uuid[])`,
        [[...dead, ...ran]],
      );
      console.error(
        JSON.stringify({ dead, ran, jobs: jobs.rows, processes: processes.rows }),
        second.output(),
      );
    }
    expect(ran.sort(), 'what the second worker runs').toEqual([...dead].sort());
    expect(await countStatus(backlog, 'created')).toBe(backlog.length);
  });
});

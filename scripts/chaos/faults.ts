// Fault injectors. Each returns once the fault is injected (and the victim restarted where that
// is part of the fault); recovery is measured separately by the caller.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { loadConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { createPool, sessionLimitsOf } from '../../src/db/pool.ts';
import type { Violation } from '../../src/db/testkit/invariants.ts';
import type { OwnCluster } from '../support/cluster.ts';
import { startFreezingProxy } from '../support/freezing-proxy.ts';
import type { Service } from './cluster.ts';
import type { Load } from './load.ts';
import type { Timeline } from './schedules.ts';

export interface FaultContext {
  db: OwnCluster;
  pool: pg.Pool;
  /** The API instances (two, both taking load). */
  apis: Service[];
  workers: Service[];
  load: Load;
  leaseSeconds: number;
  log: (msg: string) => void;
  /** What the faults saw go wrong while injecting (the pause checks). */
  violations: Violation[];
  /** Postgres downtime and pauses, for the schedule check. */
  timeline: Timeline;
}

export type FaultKind =
  | 'kill9_worker'
  | 'sigterm_worker'
  | 'sigstop_worker'
  | 'postgres_restart'
  | 'terminate_backends'
  | 'listen_cut'
  | 'concurrent_resume_abort'
  | 'kill9_api'
  | 'pause'
  | 'lost_client';

const randomOf = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

async function restart(s: Service): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await s.start();
      return;
    } catch (err) {
      if (i >= 5) throw err;
      await sleep(500);
    }
  }
}

export const FAULTS: Record<FaultKind, (c: FaultContext) => Promise<string>> = {
  async kill9_worker(c) {
    const w = randomOf(c.workers.filter((x) => x.running));
    await w.kill('SIGKILL');
    await restart(w);
    return `${w.name} killed with SIGKILL and restarted`;
  },

  async sigterm_worker(c) {
    const w = randomOf(c.workers.filter((x) => x.running));
    const code = await w.kill('SIGTERM');
    if (code !== 0)
      throw new Error(`${w.name} exited with ${code} on SIGTERM:\n${w.output.slice(-2000)}`);
    await restart(w);
    return `${w.name} stopped with SIGTERM (exit 0) and restarted`;
  },

  async sigstop_worker(c) {
    const w = randomOf(c.workers.filter((x) => x.running));
    w.signal('SIGSTOP');
    // Frozen past its lease: others take its processes over; once woken it must not commit.
    await sleep((c.leaseSeconds * 2 + 1) * 1000);
    w.signal('SIGCONT');
    return `${w.name} frozen ${c.leaseSeconds * 2 + 1} s with SIGSTOP, then SIGCONT`;
  },

  async postgres_restart(c) {
    const down: { from: number; to?: number } = { from: Date.now() };
    c.timeline.dbDown.push(down);
    try {
      await c.db.restart();
    } finally {
      down.to = Date.now();
    }
    return 'Postgres stopped and started';
  },

  async terminate_backends(c) {
    const { rowCount } = await c.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND application_name <> 'chaos'`,
    );
    return `terminated ${rowCount} backends`;
  },

  async listen_cut(c) {
    const { rowCount } = await c.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
    );
    return `terminated ${rowCount} LISTEN connections`;
  },

  async concurrent_resume_abort(c) {
    const { rows } = await c.pool.query<{ id: string; status: string }>(
      `SELECT id, status FROM orchestrator.processes
        WHERE status IN ('suspended', 'failed', 'running', 'created', 'resumed') ORDER BY random() LIMIT 10`,
    );
    if (rows.length === 0) return 'no process to race on';
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const p = rows[i % rows.length]!;
        const abort = i % 5 === 0;
        const body = !abort && p.status === 'suspended' ? { confirmed: true } : undefined;
        const r = await c.load.call(
          'PUT',
          `/api/processes/${p.id}/${abort ? 'abort' : 'resume'}`,
          body,
        );
        await r?.body?.cancel();
        // 0: no answer came, so the resume may have applied all the same.
        if (!abort && [204, 0].includes(r?.status ?? 0)) c.load.stats.resumedByFaults.add(p.id);
        return r?.status ?? 0;
      }),
    );
    const unexpected = results.filter((s) => ![204, 400, 409, 0, 503].includes(s));
    if (unexpected.length)
      throw new Error(`unexpected answers to racing resume/abort: ${unexpected.join(',')}`);
    return `50 concurrent resumes/aborts on ${rows.length} processes`;
  },

  /**
   * A session of the engine (its settings, through a proxy) holds a live process's row in a
   * transaction and is cut off without a FIN: the proxy stops forwarding and keeps its sockets.
   * The runner's commit on that row meets lock_timeout and is tried again; the server must end the
   * session within idle_in_transaction_session_timeout, which frees the row.
   */
  async lost_client(c) {
    const { rows } = await c.pool.query<{ id: string }>(
      `SELECT id FROM orchestrator.processes
        WHERE status IN ('running', 'created', 'resumed', 'suspended', 'waiting')
        ORDER BY status = 'running' DESC, random() LIMIT 1`,
    );
    const id = rows[0]?.id;
    if (!id) return 'no process to hold';
    const limits = sessionLimitsOf(
      loadConfig({ DATABASE_URL: c.db.url, LEASE_SECONDS: String(c.leaseSeconds) }),
    );
    const bound = limits.idleInTransactionMs ?? 0;
    const target = new URL(c.db.url);
    const proxy = await startFreezingProxy({ host: target.hostname, port: Number(target.port) });
    const name = 'orchestrator-lost-client';
    const pool = createPool({
      connectionString: proxy.urlFor(c.db.url),
      max: 1,
      logger: silentLogger,
      applicationName: name,
      limits,
    });
    const client = await pool.connect();
    client.on('error', () => undefined);
    try {
      await client.query('BEGIN');
      await client.query(`SELECT 1 FROM orchestrator.processes WHERE id = $1 FOR UPDATE`, [id]);
      proxy.freeze();
      const frozenAt = Date.now();
      void client.query('COMMIT').catch(() => undefined);
      for (;;) {
        const { rowCount } = await c.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = $1`,
          [name],
        );
        const ms = Date.now() - frozenAt;
        if (!rowCount)
          return `a session holding process ${id} cut off mid-transaction; the server ended it after ${ms} ms`;
        if (ms > bound + 10_000) {
          c.violations.push({
            invariant: 'lost client',
            processId: id,
            detail: `its session still there ${ms} ms after it was cut off (bound ${bound} ms)`,
          });
          return `a session holding process ${id} cut off mid-transaction; NOT ended after ${ms} ms`;
        }
        await sleep(250);
      }
    } finally {
      client.release(true);
      await proxy.close();
      await pool.end();
    }
  },

  async kill9_api(c) {
    const api = randomOf(c.apis.filter((x) => x.running));
    await api.kill('SIGKILL');
    await restart(api);
    return `${api.name} killed with SIGKILL and restarted`;
  },

  async pause(c) {
    const bad = (detail: string, processId = '-') =>
      c.violations.push({ invariant: 'pause', processId, detail });
    const window: { from: number; to?: number } = { from: Date.now() };
    c.timeline.pauses.push(window);
    const setLock = async (globalLock: boolean) => {
      for (let i = 0; i < 100; i++) {
        const r = await c.load.call('PUT', '/api/settings/status', { globalLock });
        await r?.body?.cancel();
        if (r?.status === 200) return;
        await sleep(100);
      }
      throw new Error(`could not set the global lock to ${globalLock}`);
    };
    await setLock(true);
    const t0 = Date.now();
    let status = '';
    // Running processes stop before their next step: PAUSED once no live lease is left.
    while (Date.now() - t0 < (c.leaseSeconds * 4 + 10) * 1000) {
      const r = await c.load.call('GET', '/api/settings/status');
      if (r?.status === 200) status = ((await r.json()) as { engineStatus: string }).engineStatus;
      else await r?.body?.cancel();
      if (status === 'PAUSED') break;
      await sleep(100);
    }
    const pausedMs = Date.now() - t0;
    if (status !== 'PAUSED')
      bad(`still ${status || 'unknown'} ${pausedMs} ms after the lock was set`);
    const { rows: at } = await c.pool.query<{ t: Date }>(`SELECT clock_timestamp() AS t`);
    // While PAUSED: no process running with a live lease, none started; every start answers 503.
    let refusedStarts = 0;
    for (let i = 0; i < 6 && status === 'PAUSED'; i++) {
      const { rows } = await c.pool.query<{ id: string; status: string }>(
        `SELECT id, status FROM orchestrator.processes
          WHERE (status = 'running' AND lease_expires_at > now()) OR started_at > $1`,
        [at[0]!.t],
      );
      for (const r of rows)
        bad(`${r.status} while paused (live lease or started after PAUSED)`, r.id);
      const r = await c.load.callOn(i, 'POST', '/api/processes/noop', {});
      const body = r
        ? ((await r.json().catch(() => ({}))) as { id?: string; error?: { code?: string } })
        : {};
      if (r?.status === 503 && body.error?.code === 'engine_paused') refusedStarts++;
      else if (r?.status === 201) {
        bad('a start got 201 while paused', body.id);
        if (body.id) c.load.stats.started.push(body.id);
      } else if (r) bad(`a start while paused answered ${r.status} ${body.error?.code ?? ''}`);
      await sleep(250);
    }
    await setLock(false);
    window.to = Date.now();
    return `global lock set: ${status} after ${pausedMs} ms, ${refusedStarts} starts refused 503; cleared`;
  },
};

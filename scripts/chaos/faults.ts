// Fault injectors. Each returns once the fault is injected (and the victim restarted where that
// is part of the fault); recovery is measured separately by the caller.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { OwnCluster } from '../support/cluster.ts';
import type { Service } from './cluster.ts';
import type { Load } from './load.ts';

export interface FaultContext {
  db: OwnCluster;
  pool: pg.Pool;
  api: Service;
  workers: Service[];
  load: Load;
  leaseSeconds: number;
  log: (msg: string) => void;
}

export type FaultKind =
  | 'kill9_worker'
  | 'sigterm_worker'
  | 'sigstop_worker'
  | 'postgres_restart'
  | 'terminate_backends'
  | 'listen_cut'
  | 'concurrent_resume_abort'
  | 'kill9_api';

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
    await c.db.restart();
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
        return r?.status ?? 0;
      }),
    );
    const unexpected = results.filter((s) => ![204, 400, 409, 0, 503].includes(s));
    if (unexpected.length)
      throw new Error(`unexpected answers to racing resume/abort: ${unexpected.join(',')}`);
    return `50 concurrent resumes/aborts on ${rows.length} processes`;
  },

  async kill9_api(c) {
    await c.api.kill('SIGKILL');
    await restart(c.api);
    return 'API killed with SIGKILL and restarted';
  },
};

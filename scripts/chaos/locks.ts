// Per-resource locks under fault: for each device of the inventory, bursts of concurrent
// `provision_port` starts (spread over the API instances) whenever its key is free; the winner is
// then confirmed or aborted (sometimes before it reaches its input step) so that the key comes
// free for the next burst. Meanwhile the lock tables are sampled against invariant 7
// (src/db/testkit/invariants.ts): a key never has two live holders, nor a holder that ended.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { resourceLockViolations, type Violation } from '../../src/db/testkit/invariants.ts';
import { devices, portsOf } from '../../workflows/_inventory.ts';
import type { Load } from './load.ts';

/** Concurrent starts of one burst. */
const BURST = 12;
/** Share of winners aborted rather than confirmed, and of those aborted before their input step. */
const ABORT_SHARE = 0.3;
const EARLY_ABORT_SHARE = 0.5;

interface Burst {
  device: string;
  /** HTTP statuses of the starts (0: no answer). */
  answers: number[];
  /** The ids answered 201. */
  winners: string[];
  /** The processes for the key the database has from this burst (whatever the answers said). */
  created: string[];
}

export interface LockStats {
  bursts: number;
  /** Bursts with exactly one 201 (all the others 409 resource_locked). */
  oneWinner: number;
  /** Bursts without a 201, and why: every start refused (paused, API down) or the 201 lost. */
  noWinner: Record<string, number>;
  answers: Record<string, number>;
  confirmed: number;
  aborted: number;
  samples: number;
}

export function createLocker(pool: pg.Pool, load: Load) {
  const violations: Violation[] = [];
  const seen = new Set<string>();
  const bad = (invariant: string, processId: string, detail: string) => {
    const k = `${invariant}|${processId}|${detail}`;
    if (seen.has(k)) return;
    seen.add(k);
    violations.push({ invariant, processId, detail });
  };
  const stats: LockStats = {
    bursts: 0,
    oneWinner: 0,
    noWinner: {},
    answers: {},
    confirmed: 0,
    aborted: 0,
    samples: 0,
  };
  /** Every provision_port process a burst made (the end check wants each of them ended). */
  const made = new Set<string>();

  const holderOf = async (key: string) =>
    (
      await pool.query<{ id: string }>(
        `SELECT process_id AS id FROM orchestrator.resource_locks WHERE key = $1`,
        [key],
      )
    ).rows[0]?.id;

  /** Confirms or aborts `id` until it ended; false when told to stop first. */
  async function finish(id: string): Promise<void> {
    const abort = Math.random() < ABORT_SHARE;
    const early = abort && Math.random() < EARLY_ABORT_SHARE;
    while (!load.stopped) {
      const { rows } = await pool
        .query<{ status: string }>(`SELECT status FROM orchestrator.processes WHERE id = $1`, [id])
        .catch(() => ({ rows: [] as { status: string }[] }));
      const status = rows[0]?.status;
      if (status === 'completed' || status === 'aborted') {
        if (status === 'completed') stats.confirmed++;
        else stats.aborted++;
        return;
      }
      if (status && (early || (status !== 'suspended' && status !== 'running'))) {
        // Aborted early, or something unexpected (failed): aborted so that the key comes free.
        const r = await load.call('PUT', `/api/processes/${id}/abort`);
        await r?.body?.cancel();
      } else if (status === 'suspended') {
        const r = await load.call(
          'PUT',
          `/api/processes/${id}/${abort ? 'abort' : 'resume'}`,
          abort ? undefined : { confirmed: true },
        );
        await r?.body?.cancel();
      }
      await sleep(100);
    }
  }

  async function burst(device: string): Promise<void> {
    const key = `device:${device}`;
    const ports = portsOf(device);
    const t0 = await pool.query<{ t: Date }>(`SELECT clock_timestamp() AS t`);
    const answers = await Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const r = await load.callOn(i, 'POST', '/api/processes/provision_port', [
          { device },
          { port: ports[i % ports.length] },
        ]);
        const body = r ? ((await r.json().catch(() => ({}))) as { id?: string }) : {};
        return { status: r?.status ?? 0, id: body.id };
      }),
    );
    // What the burst made, whatever the answers said (retried: Postgres may be restarting).
    let rows: { id: string }[] | undefined;
    for (let i = 0; !rows; i++) {
      rows = await pool
        .query<{ id: string }>(
          `SELECT id FROM orchestrator.processes
            WHERE workflow_name = 'provision_port' AND $1 = ANY(lock_keys) AND started_at >= $2`,
          [key, t0.rows[0]!.t],
        )
        .then((r) => r.rows)
        .catch(async (err: unknown) => {
          if (i >= 100) throw err;
          await sleep(200);
          return undefined;
        });
    }
    const b: Burst = {
      device,
      answers: answers.map((a) => a.status),
      winners: answers.filter((a) => a.status === 201 && a.id).map((a) => a.id!),
      created: rows.map((r) => r.id),
    };
    stats.bursts++;
    for (const s of b.answers) stats.answers[s] = (stats.answers[s] ?? 0) + 1;
    for (const id of b.created) made.add(id);
    const others = b.answers.filter((s) => s !== 201);
    if (b.winners.length > 1 || b.created.length > 1)
      bad(
        'one start per free key',
        b.created[0] ?? b.winners[0]!,
        `${key}: ${b.winners.length} starts got 201, ${b.created.length} processes made`,
      );
    if (b.winners.some((w) => !b.created.includes(w)))
      bad('one start per free key', b.winners[0]!, `${key}: a 201 for a process not made`);
    // The key was free: a 409 names a holder, who can only be this burst's own winner.
    if (b.created.length === 0 && others.includes(409))
      bad('one start per free key', '-', `${key} free, yet ${others.length} starts refused 409`);
    if (b.winners.length === 1 && b.created.length === 1) {
      if (others.every((s) => s === 409)) stats.oneWinner++;
      else {
        const why = `1 winner, others ${[...new Set(others)].join('/')}`;
        stats.noWinner[why] = (stats.noWinner[why] ?? 0) + 1;
      }
    } else if (b.winners.length === 0) {
      const why =
        b.created.length === 1 ? 'its 201 lost' : `refused ${[...new Set(others)].join('/')}`;
      stats.noWinner[why] = (stats.noWinner[why] ?? 0) + 1;
    }
    for (const id of b.created) await finish(id);
  }

  /** Bursts on one device, each once the key is free, until the load stops starting. */
  async function device(name: string): Promise<void> {
    const key = `device:${name}`;
    while (!load.stoppedStarting) {
      await sleep(300 + Math.floor(Math.random() * 700));
      if (held) continue;
      try {
        const holder = await holderOf(key);
        if (holder) {
          // Only the bursts start provision_port, and each ends its winner before the next.
          if (!made.has(holder))
            bad('one start per free key', holder, `${key} held by a process no burst made`);
          await finish(holder);
          continue;
        }
        await burst(name);
      } catch {
        // The database restarting: the next round looks again.
        await sleep(500);
      }
    }
  }

  /** Set while a phase drains (or between phases): no new bursts. */
  let held = false;
  let sampling = true;
  async function sampler(): Promise<void> {
    while (sampling) {
      try {
        for (const r of await resourceLockViolations(pool))
          bad('resource lock held rightly (sampled)', r.id, r.detail);
        stats.samples++;
      } catch {
        // The database restarting.
      }
      await sleep(500);
    }
  }

  return {
    stats,
    violations,
    /** No new bursts while set (those under way finish their winners). */
    hold(on: boolean) {
      held = on;
    },
    /** Runs the bursts and the sampler until the load stops starting, then stops sampling. */
    async run(): Promise<void> {
      const sampling_ = sampler();
      await Promise.all(devices().map(device));
      sampling = false;
      await sampling_;
    },
    /** At the end: every provision_port process ended, and each was made by a burst. */
    async check(): Promise<void> {
      const { rows } = await pool.query<{ id: string; status: string }>(
        `SELECT id, status FROM orchestrator.processes WHERE workflow_name = 'provision_port'`,
      );
      for (const r of rows) {
        if (!made.has(r.id)) bad('one start per free key', r.id, 'made by no burst');
        if (r.status !== 'completed' && r.status !== 'aborted')
          bad('locked process ended', r.id, `ended ${r.status}`);
      }
    },
  };
}

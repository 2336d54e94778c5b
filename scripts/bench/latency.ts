// Item 4, latency on an idle system: processes started one after another; `POST` → first step
// committed and `POST` → `noop` completed, as seen by a client LISTENing for step rows (a
// notification arrives after the commit, so this is the latency a watcher can observe).
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startProcess, wallClockMs } from './client.ts';
import { latencyRun, type LatencyRun } from './stats.ts';

const CHANNEL = 'bench_steps';

/** Installs the step-row notifications the latency figures are taken from (bench database only). */
async function installProbe(db: pg.Client): Promise<void> {
  await db.query(`CREATE OR REPLACE FUNCTION public.bench_step_probe() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN
      PERFORM pg_notify('${CHANNEL}', NEW.process_id::text || ' ' || NEW.step_index);
      RETURN NULL;
    END $$`);
  await db.query(`CREATE OR REPLACE TRIGGER bench_step_probe AFTER INSERT ON orchestrator.process_steps
    FOR EACH ROW EXECUTE FUNCTION public.bench_step_probe()`);
}

async function removeProbe(db: pg.Client): Promise<void> {
  await db.query('DROP TRIGGER IF EXISTS bench_step_probe ON orchestrator.process_steps');
  await db.query('DROP FUNCTION IF EXISTS public.bench_step_probe()');
}

export interface LatencyRuns {
  firstStep: LatencyRun[];
  completed: LatencyRun[];
}

/** `runs` runs of `count` sequential `noop` processes (3 steps). */
export async function measureLatency(
  url: string,
  apiUrl: string,
  opts: { count: number; runs: number },
): Promise<LatencyRuns> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const seen = new Map<string, Map<number, number>>();
  db.on('notification', (n) => {
    const at = wallClockMs();
    const [id, index] = (n.payload ?? '').split(' ');
    if (!id) return;
    let m = seen.get(id);
    if (!m) seen.set(id, (m = new Map()));
    m.set(Number(index), at);
  });
  await installProbe(db);
  await db.query(`LISTEN ${CHANNEL}`);
  const out: LatencyRuns = { firstStep: [], completed: [] };
  try {
    // Warm-up: connections, prepared statements and the step pool's threads.
    for (let i = 0; i < 20; i++) await one();
    for (let run = 0; run < opts.runs; run++) {
      const first: number[] = [];
      const done: number[] = [];
      for (let i = 0; i < opts.count; i++) {
        const r = await one();
        first.push(r.first);
        done.push(r.done);
      }
      out.firstStep.push(latencyRun(first));
      out.completed.push(latencyRun(done));
    }
    return out;
  } finally {
    await removeProbe(db).catch(() => undefined);
    await db.end();
  }

  async function one(): Promise<{ first: number; done: number }> {
    const t0 = wallClockMs();
    const id = await startProcess(apiUrl, 'noop', {});
    const deadline = Date.now() + 30_000;
    for (;;) {
      const m = seen.get(id);
      const first = m?.get(0);
      const done = m?.get(2);
      if (first !== undefined && done !== undefined) {
        seen.delete(id);
        return { first: first - t0, done: done - t0 };
      }
      if (Date.now() > deadline) throw new Error(`process ${id} did not complete in 30 s`);
      await sleep(0.2);
    }
  }
}

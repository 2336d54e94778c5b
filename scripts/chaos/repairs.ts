// End-of-run checks of the repairs the load made to failed flaky processes, against what it sent:
// one it skipped (204) has one `skipped` row at its step and completed without running it; one
// it patched (204) has one `StatePatched` row and completed on the patched state, with
// `succeededOnAttempt`; no process shows a repair the load did not ask for.
import type pg from 'pg';
import type { Violation } from '../../src/db/testkit/invariants.ts';
import type { RepairRecord } from './load.ts';

interface FlakyRow {
  id: string;
  status: string;
  state: { failTimes?: number; succeededOnAttempt?: number } | null;
  skipped: number;
  patched: number;
  succeeded: number;
}

const count = <T>(xs: readonly T[], key: (x: T) => string) => {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
};

export async function checkRepairs(pool: pg.Pool, repairs: ReadonlyMap<string, RepairRecord>) {
  const violations: Violation[] = [];
  const bad = (processId: string, detail: string) =>
    violations.push({ invariant: 'repair applied once', processId, detail });

  const { rows } = await pool.query<FlakyRow>(
    `SELECT p.id, p.status,
            (SELECT s.state FROM orchestrator.process_steps s WHERE s.process_id = p.id
              ORDER BY s.id DESC LIMIT 1) AS state,
            count(s.id) FILTER (WHERE s.status = 'skipped')::int AS skipped,
            count(s.id) FILTER (WHERE s.status = 'failed' AND s.error->>'name' = 'StatePatched')::int AS patched,
            count(s.id) FILTER (WHERE s.status = 'success')::int AS succeeded
       FROM orchestrator.processes p
       LEFT JOIN orchestrator.process_steps s ON s.process_id = p.id AND s.name = 'Flaky'
      WHERE p.workflow_name = 'flaky' GROUP BY p.id, p.status`,
  );
  const applied = { skip: 0, patch: 0 };
  for (const r of rows) {
    const record = repairs.get(r.id);
    const plan = record?.plan ?? 'none';
    // A request with no answer (0) may have applied: only a 204 says it did for sure.
    const sent = (record?.answers.length ?? 0) > 0;
    const ok = record?.answers.includes(204) ?? false;
    if (r.skipped > 0 && (plan !== 'skip' || !sent)) bad(r.id, `skipped, the load's plan ${plan}`);
    if (r.patched > 0 && (plan !== 'patch' || !sent)) bad(r.id, `patched, the load's plan ${plan}`);
    if (r.skipped > 1) bad(r.id, `${r.skipped} skipped rows`);
    if (r.patched > 1) bad(r.id, `${r.patched} StatePatched rows`);
    if (r.status === 'completed' && r.skipped + r.succeeded !== 1)
      bad(r.id, `completed with ${r.skipped} skipped and ${r.succeeded} success rows`);
    if (plan === 'skip' && ok) {
      applied.skip++;
      if (r.skipped !== 1 || r.status !== 'completed')
        bad(r.id, `skip got 204: ${r.skipped} skipped rows, ${r.status}`);
      if (r.succeeded > 0 || r.state?.succeededOnAttempt !== undefined)
        bad(r.id, `skipped, yet its step succeeded`);
    }
    if (plan === 'patch' && ok) {
      applied.patch++;
      if (r.patched !== 1) bad(r.id, `patch got 204: ${r.patched} StatePatched rows`);
      // Resumed by the patch, a fault may still abort it before the retry.
      if (r.status !== 'completed' && r.status !== 'aborted')
        bad(r.id, `patch got 204, ended ${r.status}`);
      if (
        r.status === 'completed' &&
        (r.state?.failTimes !== 0 || typeof r.state.succeededOnAttempt !== 'number')
      )
        bad(r.id, `patched, completed with ${JSON.stringify(r.state)}`);
    }
  }
  const records = [...repairs.values()];
  const summary = {
    flaky: rows.length,
    byStatus: count(rows, (r) => r.status),
    plans: count(records, (r) => r.plan),
    applied,
    answers: count(
      records.flatMap((r) => r.answers.map((a) => `${r.plan} ${a}`)),
      (a) => a,
    ),
  };
  return { violations, summary };
}

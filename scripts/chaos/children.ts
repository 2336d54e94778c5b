// End-of-run checks of the child processes in the load (subProcesses): every nightly_validation
// parent ended completed or aborted with exactly its 3 children, each started once and counted
// once in its `validations`; no child outside a parent's list; an aborted parent left no child
// going; a parent failed only because a fault aborted one of its children.
import type pg from 'pg';
import type { Violation } from '../../src/db/testkit/invariants.ts';
import { devices, INVENTORY } from '../../workflows/_inventory.ts';
import type { ParentRecord } from './load.ts';

const STEP = 'Validate devices';
/** The devices validate_device fails: fewer than 3 ports. */
const FAILING = devices()
  .filter((d) => (INVENTORY[d] ?? []).length < 3)
  .sort();

interface ParentRow {
  id: string;
  status: string;
  state: {
    validations?: { id: string; workflow: string; status: string; state: unknown }[];
    checked?: number;
    failures?: { device?: string }[];
  } | null;
  children: { id: string; workflow: string; status: string; step: number; successes: number }[];
  rows: { status: string; error: string | null; message: string | null }[];
}

const count = <T>(xs: readonly T[], key: (x: T) => string) => {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
};

export async function checkChildren(pool: pg.Pool, parents: ReadonlyMap<string, ParentRecord>) {
  const violations: Violation[] = [];
  const bad = (invariant: string, processId: string, detail: string) =>
    violations.push({ invariant, processId, detail });
  const expected = devices().length;

  const { rows } = await pool.query<ParentRow>(
    `SELECT p.id, p.status,
            (SELECT s.state FROM orchestrator.process_steps s WHERE s.process_id = p.id
              ORDER BY s.id DESC LIMIT 1) AS state,
            coalesce((SELECT json_agg(json_build_object(
                        'id', c.id, 'workflow', c.workflow_name, 'status', c.status, 'step', c.parent_step,
                        'successes', (SELECT count(*) FROM orchestrator.process_steps s
                                       WHERE s.process_id = c.id AND s.status = 'success'))
                        ORDER BY c.started_at, c.id)
                        FROM orchestrator.processes c WHERE c.parent_id = p.id), '[]') AS children,
            coalesce((SELECT json_agg(json_build_object('status', s.status, 'error', s.error->>'name',
                                                        'message', s.error->>'message') ORDER BY s.id)
                        FROM orchestrator.process_steps s
                       WHERE s.process_id = p.id AND s.name = $1), '[]') AS rows
       FROM orchestrator.processes p WHERE p.workflow_name = 'nightly_validation'`,
    [STEP],
  );
  for (const p of rows) {
    const ids = new Set(p.children.map((c) => c.id));
    if (p.status !== 'completed' && p.status !== 'aborted')
      bad('parent ended', p.id, `ended ${p.status}`);
    // Started once: one waiting row (the commit that inserted them; the failure of an aborted
    // child updates it to failed), 3 children, all at step 0.
    const started = p.rows.filter(
      (r) => r.status === 'waiting' || (r.status === 'failed' && r.error === 'ChildProcessError'),
    ).length;
    if (p.children.length > 0 && started !== 1)
      bad(
        'children started once',
        p.id,
        `${started} waiting rows for ${p.children.length} children`,
      );
    if (p.children.length !== expected && !(p.status === 'aborted' && p.children.length === 0))
      bad('children started once', p.id, `${p.status} with ${p.children.length} children`);
    for (const c of p.children) {
      if (c.step !== 0 || c.workflow !== 'validate_device')
        bad('children started once', p.id, `child ${c.id}: ${c.workflow} at step ${c.step}`);
      if (c.successes > 1)
        bad('child committed once', c.id, `its step cleared ${c.successes} times`);
      if (c.status === 'completed' && c.successes !== 1)
        bad('child committed once', c.id, `completed with ${c.successes} success rows`);
      if (c.status !== 'completed' && c.status !== 'aborted')
        bad('children ended', c.id, `${c.status}, its parent ${p.id} ${p.status}`);
    }
    // Failed only because a child was aborted (then the load aborted it).
    for (const r of p.rows.filter((x) => x.status === 'failed')) {
      const child = /^child (\S+) \(validate_device\) was aborted$/.exec(r.message ?? '')?.[1];
      const aborted = p.children.find((c) => c.id === child)?.status === 'aborted';
      if (r.error !== 'ChildProcessError' || !aborted)
        bad('parent failed for an aborted child', p.id, `${r.error}: ${r.message}`);
    }
    if (p.status === 'completed') {
      const v = p.state?.validations ?? [];
      const counted = count(v, (x) => x.id);
      for (const [id, n] of Object.entries(counted)) {
        if (n !== 1) bad('child counted once', p.id, `child ${id} counted ${n} times`);
        if (!ids.has(id)) bad('child counted once', p.id, `counted ${id}, not one of its children`);
      }
      for (const id of ids)
        if (!counted[id]) bad('child counted once', p.id, `child ${id} not counted`);
      for (const x of v)
        if (x.status !== 'completed')
          bad('child counted once', p.id, `counted child ${x.id} as ${x.status}`);
      if (p.state?.checked !== expected)
        bad('child counted once', p.id, `checked ${p.state?.checked}, expected ${expected}`);
      const failing = (p.state?.failures ?? []).map((f) => f.device ?? '?').sort();
      if (failing.join() !== FAILING.join())
        bad('child counted once', p.id, `failures ${failing.join()}, expected ${FAILING.join()}`);
    }
    const record = parents.get(p.id);
    if (record?.aborts.includes(204) && p.status !== 'aborted')
      bad('parent ended', p.id, `its abort got 204, ended ${p.status}`);
    for (const answer of record?.resumes ?? []) {
      // Refused while it waits (409 waiting_for_children); other answers only in a race with its
      // last child's end (or the API down): a resume applied while children went is caught above.
      if (!/^(409|204|503|0)\b/.test(answer))
        bad('resume of a waiting parent', p.id, `answered ${answer}`);
    }
  }

  // No child outside a parent's list: every validate_device has a nightly_validation parent.
  const { rows: orphans } = await pool.query<{ id: string; detail: string }>(
    `SELECT c.id, format('%s child of %s (%s)', c.status, coalesce(c.parent_id::text, 'nobody'),
                         coalesce(p.workflow_name, '-')) AS detail
       FROM orchestrator.processes c LEFT JOIN orchestrator.processes p ON p.id = c.parent_id
      WHERE c.workflow_name = 'validate_device' AND p.workflow_name IS DISTINCT FROM 'nightly_validation'`,
  );
  for (const o of orphans) bad('no child outside a parent', o.id, o.detail);

  const records = [...parents.values()];
  const summary = {
    parents: rows.length,
    byStatus: count(rows, (p) => p.status),
    children: rows.reduce((n, p) => n + p.children.length, 0),
    childrenByStatus: count(
      rows.flatMap((p) => p.children),
      (c) => c.status,
    ),
    abortedWhileWaiting: records.filter((r) => r.aborts.includes(204)).length,
    abortedAfterAChildWasAborted: records.filter((r) => r.abortedAfterChildAborted).length,
    resumesWhileWaiting: count(
      records.flatMap((r) => r.resumes),
      (a) => a,
    ),
  };
  return { violations, summary };
}

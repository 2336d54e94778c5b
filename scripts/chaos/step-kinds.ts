// End-of-run checks of the step kinds in the load, against what the load did: every retry_demo
// process completed on the attempt after its last planned failure, each attempt committed once
// (no retry lost, none run twice); every callback answered was applied at most once, with a
// payload the load sent, the one that got the 204; every callback never answered timed out; every
// sleep_demo completed (or was aborted), having slept at least its seconds, its sleep cleared once;
// every overtime process failed with StepTimeout (or was aborted), its late step never cleared.
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import type { Violation } from '../../src/db/testkit/invariants.ts';
import { CALLBACK_TIMED_OUT } from '../../src/db/callbacks.ts';
import type { CallbackPost, CallbackRecord } from './callbacks.ts';

interface RetryRow {
  id: string;
  status: string;
  overdue: boolean;
  input: { failTimes: number };
  rows: { status: string; retries: number; attempt: number | null }[];
}

interface CallbackRow {
  id: string;
  status: string;
  failedReason: string | null;
  results: unknown[];
}

/** How an `overtime` process ends: its step past its time limit of 1 s. */
export const OVERTIME_REASON = 'the step ran past its time limit of 1 s';

const count = <T>(xs: readonly T[], key: (x: T) => string) => {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
};

export async function checkStepKinds(
  pool: pg.Pool,
  callbacks: ReadonlyMap<string, CallbackRecord>,
  graceSeconds: number,
  /** Processes an operator's resume (a fault's) may have woken before their time. */
  resumed: ReadonlySet<string>,
) {
  const violations: Violation[] = [];
  const bad = (invariant: string, processId: string, detail: string) =>
    violations.push({ invariant, processId, detail });

  // retry_demo: fails `failTimes` times (each failure one attempt), then answers.
  const { rows: retries } = await pool.query<RetryRow>(
    `SELECT p.id, p.status, coalesce(p.retry_at < now() - make_interval(secs => $1), false) AS overdue,
            (SELECT i.input FROM orchestrator.input_states i
              WHERE i.process_id = p.id AND i.input_type = 'initial_state' ORDER BY i.id LIMIT 1) AS input,
            coalesce((SELECT json_agg(json_build_object('status', s.status, 'retries', s.retries,
                                                        'attempt', s.state->'answeredOnAttempt') ORDER BY s.id)
                        FROM orchestrator.process_steps s
                       WHERE s.process_id = p.id AND s.name = 'Call device'), '[]') AS rows
       FROM orchestrator.processes p WHERE p.workflow_name = 'retry_demo'`,
    [graceSeconds],
  );
  for (const r of retries) {
    const { failTimes } = r.input;
    const cleared = r.rows.filter((s) => s.status === 'success');
    const failures = r.rows.filter((s) => s.status === 'waiting' || s.status === 'failed');
    // One row for all the failures of the step, `retries` counting those after the first.
    const failedAttempts = failures.reduce((n, s) => n + 1 + s.retries, 0);
    if (cleared.length > 1)
      bad('retry run once', r.id, `'Call device' cleared ${cleared.length} times`);
    if (failures.length > 1) bad('retry run once', r.id, `${failures.length} failure rows`);
    if (failedAttempts > failTimes)
      bad('retry run once', r.id, `${failedAttempts} failed attempts of ${failTimes} planned`);
    for (const s of cleared) {
      if (s.attempt !== failTimes + 1)
        bad('retry run once', r.id, `answered on attempt ${s.attempt}, expected ${failTimes + 1}`);
      if (failedAttempts < failTimes)
        bad('retry not lost', r.id, `answered after ${failedAttempts} of ${failTimes} failures`);
    }
    if (r.status === 'completed') {
      if (cleared.length === 0) bad('retry not lost', r.id, 'completed without its answer');
    } else if (r.status === 'waiting') {
      if (r.overdue) bad('retry not lost', r.id, `still waiting, its retry due long ago`);
    } else if (r.status !== 'aborted') {
      bad('retry not lost', r.id, `ended ${r.status} with ${failTimes} planned failures`);
    }
  }

  // callback_demo: what the load sent to each, against what the process recorded.
  const { rows: cbs } = await pool.query<CallbackRow>(
    `SELECT p.id, p.status, p.failed_reason AS "failedReason",
            coalesce((SELECT json_agg(s.state->'result' ORDER BY s.id) FROM orchestrator.process_steps s
                       WHERE s.process_id = p.id AND s.name = 'Run job' AND s.status = 'success'), '[]') AS results
       FROM orchestrator.processes p WHERE p.workflow_name = 'callback_demo'`,
  );
  const posts: CallbackPost[] = [];
  for (const r of cbs) {
    const record = callbacks.get(r.id);
    posts.push(...(record?.posts ?? []));
    const results = (record?.posts ?? []).filter((p) => p.kind === 'result');
    const applied = results.filter((p) => p.answer === 204);
    if (r.results.length > 1)
      bad('callback applied once', r.id, `'Run job' cleared ${r.results.length} times`);
    if (applied.length > 1) bad('callback applied once', r.id, `${applied.length} answers got 204`);
    if (applied.length === 1) {
      if (r.results.length !== 1 || !isDeepStrictEqual(r.results[0], applied[0]!.payload))
        bad(
          'callback applied once',
          r.id,
          `204 for ${JSON.stringify(applied[0]!.payload)}, recorded ${JSON.stringify(r.results)}`,
        );
      if (r.status !== 'completed' && r.status !== 'aborted')
        bad('callback applied once', r.id, `answered (204) but ${r.status}`);
    } else if (
      r.results.length === 1 &&
      !results.some((p) => isDeepStrictEqual(p.payload, r.results[0]))
    ) {
      bad('callback applied once', r.id, `recorded ${JSON.stringify(r.results[0])}, never sent`);
    }
    for (const p of record?.posts ?? []) {
      // 503: no verdict (the database restarting, or the engine paused), nothing applied.
      if (p.kind === 'wrong_token' && p.answer !== 404 && p.answer !== 503 && p.answer !== 'other')
        bad('wrong token refused', r.id, `a wrong token got ${p.answer}`);
    }
    const timedOut = r.status === 'failed' && r.failedReason === CALLBACK_TIMED_OUT;
    if (record?.plan === 'never') {
      if (!timedOut && r.status !== 'aborted')
        bad('callback timed out', r.id, `never answered, ended ${r.status} (${r.failedReason})`);
    } else if (record && r.status !== 'completed' && r.status !== 'aborted') {
      bad('callback answered', r.id, `plan ${record.plan}, ended ${r.status} (${r.failedReason})`);
    }
  }

  // sleep_demo: 'Wait' sleeps `seconds` durably; 'Wake up' measures from 'Note the time'.
  const { rows: sleeps } = await pool.query<{
    id: string;
    status: string;
    seconds: number;
    sleptMs: number | null;
    waits: number;
  }>(
    `SELECT p.id, p.status,
            (SELECT (i.input->>'seconds')::float8 FROM orchestrator.input_states i
              WHERE i.process_id = p.id AND i.input_type = 'initial_state' ORDER BY i.id LIMIT 1) AS seconds,
            (SELECT (s.state->>'sleptMs')::float8 FROM orchestrator.process_steps s
              WHERE s.process_id = p.id ORDER BY s.id DESC LIMIT 1) AS "sleptMs",
            (SELECT count(*)::int FROM orchestrator.process_steps s
              WHERE s.process_id = p.id AND s.name = 'Wait' AND s.status = 'success') AS waits
       FROM orchestrator.processes p WHERE p.workflow_name = 'sleep_demo'`,
  );
  let overslept = 0;
  let wokenByResume = 0;
  for (const r of sleeps) {
    if (r.waits > 1) bad('sleep cleared once', r.id, `'Wait' cleared ${r.waits} times`);
    if (r.status === 'completed') {
      if (r.waits !== 1) bad('sleep cleared once', r.id, `completed with ${r.waits} 'Wait' rows`);
      if (r.sleptMs === null || r.sleptMs < r.seconds * 1000) {
        // A resume wakes a sleep at once: early only without one.
        if (r.sleptMs !== null && resumed.has(r.id)) wokenByResume++;
        else bad('no early wake-up', r.id, `slept ${r.sleptMs} ms of ${r.seconds} s`);
      } else overslept = Math.max(overslept, r.sleptMs - r.seconds * 1000);
    } else if (r.status !== 'aborted') {
      bad('sleep woke up', r.id, `ended ${r.status}`);
    }
  }

  // overtime: 'Past its limit' runs past its time limit, ignoring its signal.
  const { rows: overtimes } = await pool.query<{
    id: string;
    status: string;
    failedReason: string | null;
    cleared: number;
    errors: (string | null)[];
  }>(
    `SELECT p.id, p.status, p.failed_reason AS "failedReason",
            (SELECT count(*)::int FROM orchestrator.process_steps s
              WHERE s.process_id = p.id AND s.name = 'Past its limit' AND s.status = 'success') AS cleared,
            coalesce((SELECT json_agg(s.error->>'name' ORDER BY s.id) FROM orchestrator.process_steps s
                       WHERE s.process_id = p.id AND s.name = 'Past its limit' AND s.status = 'failed'), '[]') AS errors
       FROM orchestrator.processes p WHERE p.workflow_name = 'overtime'`,
  );
  for (const r of overtimes) {
    if (r.cleared > 0) bad('time limit held', r.id, `'Past its limit' cleared ${r.cleared} times`);
    const other = r.errors.filter((e) => e !== 'StepTimeout');
    if (other.length > 0) bad('time limit held', r.id, `failed with ${other.join(', ')}`);
    if (r.status === 'failed' ? r.failedReason !== OVERTIME_REASON : r.status !== 'aborted')
      bad('time limit held', r.id, `ended ${r.status} (${r.failedReason})`);
  }

  const plans = [...callbacks.values()];
  const summary = {
    retryDemo: {
      processes: retries.length,
      byStatus: count(retries, (r) => r.status),
      byFailTimes: count(retries, (r) => String(r.input.failTimes)),
    },
    callbackDemo: {
      processes: cbs.length,
      byStatus: count(cbs, (r) =>
        r.status === 'failed' ? `failed: ${r.failedReason ?? ''}` : r.status,
      ),
      plans: count(plans, (r) => r.plan),
      posts: count(posts, (p) => `${p.kind} ${p.answer}`),
    },
    sleepDemo: {
      processes: sleeps.length,
      byStatus: count(sleeps, (r) => r.status),
      maxOversleptMs: Math.round(overslept),
      wokenByResume,
    },
    overtime: { processes: overtimes.length, byStatus: count(overtimes, (r) => r.status) },
  };
  return { violations, summary };
}

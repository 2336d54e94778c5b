// The statements that write step rows and leases (src/db/step-commits.ts, leases.ts, resumes.ts) against a real Postgres:
// the single and the batched commit write the same rows, and the status sets the engine passes
// to SQL are the ones the schema's CHECK constraints allow.
import { describe, expect, it } from 'vitest';
import {
  CLEARED_STEP_STATUSES,
  PROCESS_STATUSES,
  RESUMABLE_STATUSES,
  STEP_STATUSES,
  TERMINAL_STATUSES,
} from '../src/db/model.ts';
import {
  commitPlainSteps,
  commitStep,
  isPlainCommit,
  type StepCommit,
} from '../src/db/step-commits.ts';
import { seedProcess, claimProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';

const h = useHarness();

/** The quoted words of a constraint or index definition, in order. */
const quoted = (def: string) => [...def.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);

describe('status sets', () => {
  it('are the statuses the CHECK constraints and the cleared-once index allow', async () => {
    const constraint = async (name: string) =>
      (
        await h.db.pool.query<{ def: string }>(
          `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = $1`,
          [name],
        )
      ).rows[0]!.def;
    expect(quoted(await constraint('processes_status_check'))).toEqual([...PROCESS_STATUSES]);
    expect(quoted(await constraint('process_steps_status_check'))).toEqual([...STEP_STATUSES]);
    const { rows } = await h.db.pool.query<{ def: string }>(
      `SELECT pg_get_indexdef('orchestrator.process_steps_cleared_once'::regclass) AS def`,
    );
    expect(quoted(rows[0]!.def)).toEqual([...CLEARED_STEP_STATUSES]);
  });

  it('resumable is every status but created, running, completed and aborted; terminal ends', () => {
    expect(new Set(RESUMABLE_STATUSES)).toEqual(
      new Set(
        PROCESS_STATUSES.filter((s) => !['created', 'running', 'completed', 'aborted'].includes(s)),
      ),
    );
    expect(TERMINAL_STATUSES).toEqual(['completed', 'aborted']);
  });
});

describe('single and batched commits', () => {
  async function claimed(): Promise<{ id: string; token: string }> {
    const id = await seedProcess(h.db.pool, { input: { n: 0 } });
    const claim = await claimProcess(h.db.pool, id, 'test', 30);
    return { id, token: claim!.leaseToken };
  }
  const commitOf = (p: { id: string; token: string }, c: Partial<StepCommit> = {}): StepCommit => ({
    id: p.id,
    leaseToken: p.token,
    index: 0,
    name: 'One',
    group: 'G',
    stepStatus: 'success',
    state: { n: 1, nested: { a: [1, 2] } },
    startedAt: new Date('2026-01-01T00:00:00Z'),
    createdBy: 'alice',
    processStatus: 'running',
    nextIndex: 1,
    nextAttempt: 1,
    leaseSeconds: 30,
    ...c,
  });
  /** What a commit leaves, without what differs by identity or time. */
  async function rowsOf(id: string) {
    const p = await h.db.pool.query(
      `SELECT status, step_index, attempt, last_step, failed_reason, traceback, retry_at,
              lease_owner, lease_token IS NOT NULL AS leased, lease_expires_at > now() AS lease_live,
              version
         FROM orchestrator.processes WHERE id = $1`,
      [id],
    );
    const s = await h.db.pool.query(
      `SELECT step_index, name, status, state, error, started_at, retries, created_by, step_group
         FROM orchestrator.process_steps WHERE process_id = $1 ORDER BY id`,
      [id],
    );
    return { process: p.rows[0], steps: s.rows };
  }

  for (const [label, c] of [
    ['a step that keeps the process running', {}],
    ['a skipped step', { stepStatus: 'skipped' }],
    ['the last step', { processStatus: 'completed', group: undefined }],
  ] as [string, Partial<StepCommit>][]) {
    it(`write the same rows and events for ${label}`, async () => {
      const a = await claimed();
      const b = await claimed();
      const ca = commitOf(a, c);
      const cb = commitOf(b, c);
      expect(isPlainCommit(ca)).toBe(true);
      const single = await commitStep(h.db.pool, ca);
      const [batched] = await commitPlainSteps(h.db.pool, [cb], 30);
      expect(await rowsOf(a.id)).toEqual(await rowsOf(b.id));
      // Events without what differs by identity or time.
      const strip = (r: typeof single) => {
        if (!r.held || !r.events) return r;
        const [step, proc] = r.events;
        return {
          step: { ...step, id: 0, processId: '', completedAt: '' },
          process: { ...proc, id: '', lastModifiedAt: '' },
        };
      };
      expect(strip(batched!)).toEqual(strip(single));
    });
  }

  it('neither writes anything for a lost lease', async () => {
    const a = await claimed();
    const b = await claimed();
    const before = [await rowsOf(a.id), await rowsOf(b.id)];
    const lost = { token: '00000000-0000-4000-8000-000000000000' };
    expect(await commitStep(h.db.pool, commitOf({ ...a, ...lost }))).toEqual({ held: false });
    expect(await commitPlainSteps(h.db.pool, [commitOf({ ...b, ...lost })], 30)).toEqual([
      { held: false },
    ]);
    expect([await rowsOf(a.id), await rowsOf(b.id)]).toEqual(before);
  });

  it('a commit the batch cannot take is not plain', () => {
    const p = { id: 'x', token: 'y' };
    expect(isPlainCommit(commitOf(p, { stepStatus: 'failed', processStatus: 'failed' }))).toBe(
      false,
    );
    expect(isPlainCommit(commitOf(p, { retryAt: new Date() }))).toBe(false);
    expect(isPlainCommit(commitOf(p, { nextAttempt: 2 }))).toBe(false);
    expect(
      isPlainCommit(
        commitOf(p, { stepStatus: 'awaiting_callback', processStatus: 'awaiting_callback' }),
      ),
    ).toBe(false);
  });
});

import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/config/logger.ts';
import { checkInvariants } from '../src/db/testkit/invariants.ts';
import { getCallbacks, resolveCallback, timeOutCallbacks } from '../src/db/callbacks.ts';
import { markResumed } from '../src/db/resumes.ts';
import { commitStep, type StepCommit } from '../src/db/step-commits.ts';
import { createRegistry, loadRegistry, type Registry } from '../src/engine/registry.ts';
import { createBoss, createQueues } from '../src/executors/boss.ts';
import { workflow } from '../src/index.ts';
import { seedProcess, claimProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';
import { root } from './support/paths.ts';

// Rows in broken states on purpose: the checks themselves are what this file tests.
const h = useHarness({ invariants: false });
let registry: Registry;

beforeAll(async () => {
  registry = await loadRegistry(`${root}/workflows`);
});

async function proc(status: string, stepIndex: number, rows: [number, string][], extra = '') {
  const id = await seedProcess(h.db.pool);
  await h.db.pool.query(
    `UPDATE orchestrator.processes SET status = $2, step_index = $3 ${extra} WHERE id = $1`,
    [id, status, stepIndex],
  );
  for (const [index, st] of rows) {
    await h.db.pool.query(
      `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
       VALUES ($1, $2, 'x', $3, '{}', now())`,
      [id, index, st],
    );
  }
  return id;
}

it('finds nothing wrong in consistent data and each kind of corruption in broken data', async () => {
  await proc('completed', 3, [
    [0, 'success'],
    [1, 'failed'],
    [1, 'skipped'],
    [2, 'success'],
  ]);
  await proc('failed', 1, [
    [0, 'success'],
    [1, 'failed'],
  ]);
  await proc('created', 0, []);
  expect(await checkInvariants(h.db.pool, { registry })).toEqual([]);

  const gap = await proc('completed', 3, [
    [0, 'success'],
    [2, 'success'],
  ]);
  const outOfOrder = await proc(
    'running',
    2,
    [
      [1, 'success'],
      [0, 'success'],
    ],
    `, lease_token = gen_random_uuid()`,
  );
  const noLease = await proc('running', 0, []);
  const abandoned = await proc(
    'running',
    0,
    [],
    `, lease_token = gen_random_uuid(), lease_expires_at = now() - interval '1 hour'`,
  );
  const suspendedWrong = await proc('suspended', 1, [[0, 'success']]);
  const failedKeepsLease = await proc(
    'failed',
    0,
    [[0, 'failed']],
    `, lease_token = gen_random_uuid()`,
  );
  const found = await checkInvariants(h.db.pool, { registry });
  const by = (id: string) => found.filter((v) => v.processId === id).map((v) => v.invariant);
  expect(by(gap)).toEqual(['steps committed in order']);
  expect(by(outOfOrder)).toEqual(['steps committed in order']);
  expect(by(noLease)).toEqual(['status fits steps']);
  expect(by(abandoned)).toEqual(['no abandoned lease']);
  expect(by(suspendedWrong)).toEqual(['status fits steps']);
  expect(by(failedKeepsLease)).toEqual(['status fits steps']);
});

it('flags a running process whose lease expired more than two leases ago', async () => {
  // A runner cut off mid-transaction: its session held the row, so no sweeper took it over.
  const lease = `, lease_token = gen_random_uuid(), lease_expires_at = now() - $4::interval`;
  const seeded = async (ago: string) => {
    const id = await seedProcess(h.db.pool);
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET status = $2, step_index = $3 ${lease} WHERE id = $1`,
      [id, 'running', 0, ago],
    );
    return id;
  };
  const lost = await seeded('25 seconds');
  const late = await seeded('15 seconds');
  const found = await checkInvariants(h.db.pool, { registry, leaseSeconds: 10 });
  const by = (id: string) => found.filter((v) => v.processId === id);
  expect(by(lost)).toEqual([
    {
      invariant: 'no abandoned lease',
      processId: lost,
      detail: 'lease expired more than 20 s ago',
    },
  ]);
  // Expired, but within two leases: a sweeper may still be on its way.
  expect(by(late)).toEqual([]);
  // Without the lease, the grace stays abandonedAfterSeconds (60 s).
  expect(
    (await checkInvariants(h.db.pool, { registry })).filter((v) => v.processId === lost),
  ).toEqual([]);
  await h.db.pool.query(`DELETE FROM orchestrator.processes WHERE id = ANY($1)`, [[lost, late]]);
});

describe('retries and callbacks', () => {
  /** A process of `workflow` claimed by a runner, as the engine leaves it before its first step. */
  async function claimed(workflow: string): Promise<{ id: string; token: string }> {
    const id = await seedProcess(h.db.pool, { workflowName: workflow });
    const claim = await claimProcess(h.db.pool, id, 'test', 30);
    return { id, token: claim!.leaseToken };
  }
  const commit = (p: { id: string; token: string }, c: Partial<StepCommit>): StepCommit => ({
    id: p.id,
    leaseToken: p.token,
    index: 0,
    name: 'Run job',
    stepStatus: 'success',
    state: {},
    startedAt: new Date(),
    createdBy: null,
    processStatus: 'running',
    nextIndex: 1,
    nextAttempt: 1,
    leaseSeconds: 30,
    ...c,
  });
  /** A retry step's failure with attempts left: `waiting`, due in `dueInMs`. */
  const waitingCommit = (p: { id: string; token: string }, dueInMs: number) =>
    commit(p, {
      name: 'Call device',
      stepStatus: 'waiting',
      processStatus: 'waiting',
      nextIndex: 0,
      nextAttempt: 2,
      error: { name: 'Error', message: 'the device did not answer' },
      failedReason: 'the device did not answer',
      retryAt: new Date(Date.now() + dueInMs),
    });
  /** A callback step's action ran: `awaiting_callback`, timing out in `timeoutMs`. */
  async function awaiting(p: { id: string; token: string }, timeoutMs: number): Promise<string> {
    const r = await commitStep(
      h.db.pool,
      commit(p, {
        stepStatus: 'awaiting_callback',
        processStatus: 'awaiting_callback',
        nextIndex: 0,
        callback: {
          tokenHash: randomBytes(32),
          expiresAt: new Date(Date.now() + timeoutMs),
        },
      }),
    );
    expect(r.held).toBe(true);
    return (await getCallbacks(h.db.pool, p.id))[0]!.id;
  }
  const answer = (id: string, callbackId: string) =>
    resolveCallback(h.db.pool, {
      processId: id,
      callbackId,
      index: 0,
      name: 'Run job',
      state: { result: { ok: true } },
      stepStatus: 'success',
      nextStatus: 'resumed',
      user: 'callback',
    });
  /** Inserts a step row; `at` as SQL for its started_at (default now()). */
  const row = (id: string, status: string, opts: { at?: string; error?: string } = {}) =>
    h.db.pool.query(
      `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, error, started_at)
       VALUES ($1, 0, 'Run job', $2, '{}', $3, ${opts.at ?? 'now()'})`,
      [id, status, opts.error ?? null],
    );
  /** Inserts a callback row of step 0; `set` as SQL column assignments. */
  const callback = (id: string, status: string, set: Record<string, string> = {}) =>
    h.db.pool.query(
      `INSERT INTO orchestrator.callbacks (process_id, step_index, token_hash, status${Object.keys(
        set,
      )
        .map((k) => `, ${k}`)
        .join('')})
       VALUES ($1, 0, $2, $3${Object.values(set)
         .map((v) => `, ${v}`)
         .join('')})`,
      [id, randomBytes(32), status],
    );
  const timeoutError = JSON.stringify({ name: 'CallbackTimeout', message: 'callback timed out' });

  it('pass on what the engine writes: waiting, awaiting, answered, timed out, resumed after a timeout', async () => {
    const boss = createBoss({
      connectionString: h.db.url,
      logger: silentLogger,
      applicationName: 'test',
    });
    await boss.start();
    try {
      await createQueues(boss, ['resume_workflows']);
      const waiting = await claimed('retry_demo');
      await commitStep(h.db.pool, waitingCommit(waiting, 60_000));
      // Its retry, as the worker-mode runner schedules it.
      await boss.send(
        'resume_workflows',
        { processId: waiting.id, user: null },
        {
          startAfter: new Date(Date.now() + 60_000),
        },
      );

      const pending = await claimed('callback_demo');
      await awaiting(pending, 300_000);

      const answered = await claimed('callback_demo');
      expect(await answer(answered.id, await awaiting(answered, 300_000))).toBeDefined();

      const timedOut = await claimed('callback_demo');
      await awaiting(timedOut, -1_000);
      const resumedAfterTimeout = await claimed('callback_demo');
      await awaiting(resumedAfterTimeout, -1_000);
      const awaitingAgain = await claimed('callback_demo');
      await awaiting(awaitingAgain, -1_000);
      expect(await timeOutCallbacks(h.db.pool, 100)).toHaveLength(3);
      expect(await markResumed(h.db.pool, resumedAfterTimeout.id, ['failed'], null)).toBeDefined();
      // Resumed, run again: a new callback; the old one stays expired.
      expect(await markResumed(h.db.pool, awaitingAgain.id, ['failed'], null)).toBeDefined();
      const again = await claimProcess(h.db.pool, awaitingAgain.id, 'test', 30);
      await awaiting({ id: awaitingAgain.id, token: again!.leaseToken }, 300_000);

      // The jobs the API sends with the answer and the resume.
      for (const p of [answered, resumedAfterTimeout])
        await boss.send('resume_workflows', { processId: p.id, user: null });

      const found = await checkInvariants(h.db.pool, { registry, checkJobs: true });
      for (const p of [waiting, pending, answered, timedOut, resumedAfterTimeout, awaitingAgain])
        expect(found.filter((v) => v.processId === p.id)).toEqual([]);
      const { rows } = await h.db.pool.query(
        `SELECT status, failed_reason FROM orchestrator.processes WHERE id = $1`,
        [timedOut.id],
      );
      expect(rows[0]).toEqual({ status: 'failed', failed_reason: 'callback timed out' });
    } finally {
      await boss.stop({ graceful: false });
    }
  });

  it('catch each way a retry or a callback can go wrong', async () => {
    // Waiting: on the wrong row, without a retry time, with its retry lost, and a retry time
    // left on a process that no longer waits.
    const waitingOnFailed = await proc('waiting', 0, [[0, 'failed']], `, retry_at = now()`);
    const waitingNoTime = await proc('waiting', 0, [[0, 'waiting']]);
    const retryLost = await proc(
      'waiting',
      0,
      [[0, 'waiting']],
      `, retry_at = now() - interval '1 hour'`,
    );
    const failedWithRetryTime = await proc('failed', 0, [[0, 'failed']], `, retry_at = now()`);
    // With jobs checked: a waiting process without its scheduled retry.
    const waitingNoJob = await proc(
      'waiting',
      0,
      [[0, 'waiting']],
      `, retry_at = now() + interval '1 hour'`,
    );

    // Awaiting a callback: without one, with two pending, with a newer one cancelled, with its
    // timeout lost; and a pending callback of a process that no longer awaits it.
    const awaitingNone = await proc('awaiting_callback', 0, [[0, 'awaiting_callback']]);
    const awaitingTwo = await proc('awaiting_callback', 0, [[0, 'awaiting_callback']]);
    await callback(awaitingTwo, 'pending');
    await callback(awaitingTwo, 'pending');
    const awaitingCancelled = await proc('awaiting_callback', 0, [[0, 'awaiting_callback']]);
    await callback(awaitingCancelled, 'pending');
    await callback(awaitingCancelled, 'cancelled');
    const timeoutLost = await proc('awaiting_callback', 0, [[0, 'awaiting_callback']]);
    await callback(timeoutLost, 'pending', { expires_at: `now() - interval '1 hour'` });
    const pendingOnFailed = await proc('failed', 0, [[0, 'failed']]);
    await callback(pendingOnFailed, 'pending');

    // Answered: applied twice (a success and a failure row at its resolution), and not at all.
    const appliedTwice = await proc(
      'running',
      1,
      [[0, 'awaiting_callback']],
      `, lease_token = gen_random_uuid()`,
    );
    await callback(appliedTwice, 'done', {
      created_at: `now() - interval '1 minute'`,
      resolved_at: 'now()',
    });
    await row(appliedTwice, 'failed');
    await row(appliedTwice, 'success');
    const notApplied = await proc(
      'running',
      0,
      [[0, 'awaiting_callback']],
      `, lease_token = gen_random_uuid()`,
    );
    await callback(notApplied, 'done', { resolved_at: 'now()' });

    // Timed out: without its timeout row, and with the process not failed for it.
    const noTimeoutRow = await proc(
      'failed',
      0,
      [
        [0, 'awaiting_callback'],
        [0, 'failed'],
      ],
      `, failed_reason = 'callback timed out'`,
    );
    await callback(noTimeoutRow, 'expired', {
      created_at: `now() - interval '1 minute'`,
      resolved_at: 'now()',
    });
    const notFailedForIt = await proc(
      'failed',
      0,
      [[0, 'awaiting_callback']],
      `, failed_reason = 'boom'`,
    );
    await callback(notFailedForIt, 'expired', {
      created_at: `now() - interval '1 minute'`,
      resolved_at: 'now()',
    });
    await row(notFailedForIt, 'failed', { error: timeoutError });

    const found = await checkInvariants(h.db.pool, { registry, checkJobs: true });
    const by = (id: string) => found.filter((v) => v.processId === id).map((v) => v.invariant);
    expect(by(waitingOnFailed)).toEqual(['status fits steps', 'one job per runnable process']);
    // Waiting with no retry time is waiting for children (no job): none going here.
    expect(by(waitingNoTime)).toEqual(['status fits steps']);
    expect(by(retryLost)).toEqual(['no lost retry', 'one job per runnable process']);
    expect(by(failedWithRetryTime)).toEqual(['status fits steps']);
    expect(by(waitingNoJob)).toEqual(['one job per runnable process']);
    expect(by(awaitingNone)).toEqual(['status fits steps']);
    expect(by(awaitingTwo)).toEqual(['status fits steps']);
    expect(by(awaitingCancelled)).toEqual(['status fits steps']);
    expect(by(timeoutLost)).toEqual(['no lost callback timeout']);
    expect(by(pendingOnFailed)).toEqual(['status fits steps']);
    expect(by(appliedTwice)).toEqual(['callback applied once']);
    expect(by(notApplied)).toEqual(['callback applied once']);
    expect(by(noTimeoutRow)).toEqual(['timed-out callback failed the process']);
    expect(by(notFailedForIt)).toEqual(['timed-out callback failed the process']);
  });
});

it('resource locks: held only by a live process that needs them, all or none, none left queued for free keys', async () => {
  const locked = async (status: string, keys: string[], held: string[], queued: string[] = []) => {
    const id = await seedProcess(h.db.pool, { lockKeys: keys });
    await h.db.pool.query(`UPDATE orchestrator.processes SET status = $2 WHERE id = $1`, [
      id,
      status,
    ]);
    for (const key of held)
      await h.db.pool.query(
        `INSERT INTO orchestrator.resource_locks (key, process_id) VALUES ($1, $2)`,
        [key, id],
      );
    for (const key of queued)
      await h.db.pool.query(
        `INSERT INTO orchestrator.resource_lock_waiters (process_id, key) VALUES ($1, $2)`,
        [id, key],
      );
    return id;
  };
  const k = (name: string) => `inv:${name}:${randomBytes(4).toString('hex')}`;
  const a = k('a');
  const b = k('b');
  const holder = await locked('suspended', [a, b], [a, b]);
  const queuedBehind = await locked('created', [a], [], [a]);
  const failedHolder = await locked('failed', [k('f')], []);
  const ended = k('ended');
  const completedHolder = await locked('completed', [ended], [ended]);
  const c = k('c');
  const half = await locked('running', [c, k('d')], [c]);
  const notNeeded = k('n');
  const holdsOther = await locked('suspended', [k('m')], [notNeeded]);
  const queuedFree = await locked('created', [k('free')], [], [k('free2')]);
  const e = k('e');
  const queuedAndHolding = await locked('created', [e, a], [e], [a]);
  const abortedQueued = await locked('aborted', [a], [], [a]);

  const found = await checkInvariants(h.db.pool, { registry });
  const by = (id: string) =>
    found.filter((v) => v.processId === id && v.invariant === 'resource lock held rightly');
  for (const id of [holder, queuedBehind]) expect(by(id)).toEqual([]);
  expect(by(failedHolder).map((v) => v.detail)).toEqual([
    expect.stringContaining('holds 0 of its keys'),
  ]);
  expect(by(completedHolder).map((v) => v.detail)).toEqual([
    expect.stringContaining('after it ended'),
  ]);
  expect(by(half).map((v) => v.detail)).toEqual([expect.stringContaining('holds 1 of its keys')]);
  expect(by(holdsOther).map((v) => v.detail)).toEqual([
    expect.stringContaining('it does not need'),
    expect.stringContaining('holds 0 of its keys'),
  ]);
  expect(by(queuedFree).map((v) => v.detail)).toEqual([expect.stringContaining('all free')]);
  expect(by(queuedAndHolding).map((v) => v.detail)).toEqual([
    expect.stringContaining('while queued'),
  ]);
  expect(by(abortedQueued).map((v) => v.detail)).toEqual([
    expect.stringContaining('aborted and queued'),
  ]);
});

describe('children and repairs', () => {
  /** A process of `workflow` at `status`, with its rows, a child of `parent` at its step when given. */
  async function seeded(
    workflowName: string,
    status: string,
    stepIndex: number,
    rows: [number, string][],
    parent?: { id: string; step: number | null },
  ): Promise<string> {
    const id = await seedProcess(h.db.pool, { workflowName });
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET status = $2, step_index = $3, parent_id = $4, parent_step = $5
        WHERE id = $1`,
      [id, status, stepIndex, parent?.id ?? null, parent?.step ?? null],
    );
    for (const [index, st] of rows)
      await h.db.pool.query(
        `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
         VALUES ($1, $2, 'x', $3, '{}', now())`,
        [id, index, st],
      );
    return id;
  }
  const parent = (status: string, stepIndex: number, rows: [number, string][]) =>
    seeded('nightly_validation', status, stepIndex, rows);
  const child = (of: string, status: string, step: number | null = 0) =>
    seeded(
      'validate_device',
      status,
      status === 'completed' ? 1 : 0,
      status === 'completed' ? [[0, 'success']] : status === 'aborted' ? [[0, 'abort']] : [],
      { id: of, step },
    );
  const found = async (ids: string[], reg = registry) => {
    const all = await checkInvariants(h.db.pool, { registry: reg });
    return (id: string) => {
      expect(ids).toContain(id);
      return all.filter((v) => v.processId === id).map((v) => `${v.invariant}: ${v.detail}`);
    };
  };

  it('children: one going only while its parent waits for it at its step; its parent exists and started it there', async () => {
    // Good: waiting for a child going (another ended); past the step with all ended.
    const waiting = await parent('waiting', 0, [[0, 'waiting']]);
    const going = await child(waiting, 'created');
    const endedEarly = await child(waiting, 'completed');
    const done = await parent('completed', 2, [
      [0, 'waiting'],
      [0, 'success'],
      [1, 'success'],
    ]);
    const doneKids = [await child(done, 'completed'), await child(done, 'aborted')];
    const aborted = await parent('aborted', 0, [
      [0, 'waiting'],
      [0, 'abort'],
    ]);
    const abortedKid = await child(aborted, 'aborted');
    // Bad: resumed, completed, aborted while a child goes; waiting without any child going.
    const resumedEarly = await parent('resumed', 0, [[0, 'waiting']]);
    await child(resumedEarly, 'created');
    const completedEarly = await parent('completed', 2, [
      [0, 'waiting'],
      [0, 'success'],
      [1, 'success'],
    ]);
    await child(completedEarly, 'completed');
    await child(completedEarly, 'created');
    const abortedEarly = await parent('aborted', 0, [
      [0, 'waiting'],
      [0, 'abort'],
    ]);
    await child(abortedEarly, 'created');
    // (Its child ended while it waited: the trigger would have resumed it, so it ends first.)
    const waitingForNothing = await parent('created', 0, []);
    await child(waitingForNothing, 'completed');
    await h.db.pool.query(
      `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
       VALUES ($1, 0, 'x', 'waiting', '{}', now())`,
      [waitingForNothing],
    );
    await h.db.pool.query(`UPDATE orchestrator.processes SET status = 'waiting' WHERE id = $1`, [
      waitingForNothing,
    ]);
    // Bad children: at a step its parent has not reached, where it started none, at no step, and
    // with no parent at all (the foreign key set aside for it).
    const early = await parent('completed', 2, [
      [0, 'waiting'],
      [0, 'success'],
      [1, 'success'],
    ]);
    const ahead = await child(early, 'completed', 3);
    const notStarted = await child(early, 'completed', 1);
    const noStep = await child(early, 'completed', null);
    const orphan = await child(early, 'completed');
    const c = await h.db.pool.connect();
    try {
      await c.query(`SET session_replication_role = replica`);
      await c.query(
        `UPDATE orchestrator.processes SET parent_id = gen_random_uuid() WHERE id = $1`,
        [orphan],
      );
    } finally {
      await c.query(`RESET session_replication_role`);
      c.release();
    }

    const by = await found([
      waiting,
      going,
      endedEarly,
      done,
      ...doneKids,
      aborted,
      abortedKid,
      resumedEarly,
      completedEarly,
      abortedEarly,
      waitingForNothing,
      early,
      ahead,
      notStarted,
      noStep,
      orphan,
    ]);
    for (const id of [waiting, going, endedEarly, done, ...doneKids, aborted, abortedKid, early])
      expect(by(id)).toEqual([]);
    const goneOn = 'children ended before their parent goes on';
    expect(by(resumedEarly)).toEqual([expect.stringMatching(`^${goneOn}: resumed at step 0`)]);
    expect(by(completedEarly)).toEqual([expect.stringMatching(`^${goneOn}: completed at step 2`)]);
    expect(by(abortedEarly)).toEqual([expect.stringMatching(`^${goneOn}: aborted at step 0`)]);
    expect(by(waitingForNothing)).toEqual([
      'status fits steps: waiting without a retry time and without children going',
    ]);
    expect(by(ahead)).toEqual([expect.stringMatching(/: the parent is at step 2$/)]);
    expect(by(notStarted)).toEqual([
      expect.stringMatching(/: the parent started no children there$/),
    ]);
    expect(by(noStep)).toEqual([expect.stringMatching(/at step none: no step$/)]);
    expect(by(orphan)).toEqual([expect.stringMatching(/: no such parent$/)]);
  });

  it('a skipped row follows a failed row at its step, unless the step is conditional', async () => {
    const conditional = workflow({ name: 'inv_conditional', target: 'modify', description: 'x' })
      .step('One', () => ({}))
      .conditional(
        () => false,
        (b) => b.step('Two', () => ({})),
      );
    const reg = createRegistry([...registry.list(), conditional]);
    const repaired = await seeded('noop', 'completed', 3, [
      [0, 'success'],
      [1, 'failed'],
      [1, 'skipped'],
      [2, 'success'],
    ]);
    const conditionFalse = await seeded('inv_conditional', 'completed', 2, [
      [0, 'success'],
      [1, 'skipped'],
    ]);
    const unfailed = await seeded('noop', 'completed', 3, [
      [0, 'success'],
      [1, 'skipped'],
      [2, 'success'],
    ]);
    const failedElsewhere = await seeded('noop', 'completed', 3, [
      [0, 'failed'],
      [0, 'success'],
      [1, 'skipped'],
      [2, 'success'],
    ]);
    const by = await found([repaired, conditionFalse, unfailed, failedElsewhere], reg);
    expect(by(repaired)).toEqual([]);
    expect(by(conditionFalse)).toEqual([]);
    for (const id of [unfailed, failedElsewhere])
      expect(by(id)).toEqual([
        'skipped only after a failure: step 1 (x) skipped without failing first',
      ]);
  });
});

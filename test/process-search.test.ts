// The process list at scale, through the API: the search (id prefix, workflow, creator, note
// words, a value of the current state), the filters that combine with it, and one step's state
// read on its own.
import { beforeAll, describe, expect, it } from 'vitest';
import { idPrefixRange } from '../src/db/process-list.ts';
import { seedProcesses } from '../src/db/testkit/seed.ts';
import { deleteSchedules, useHarness } from './support/harness.ts';

// Hand-made rows: no invariant check.
const h = useHarness({ executor: 'threadpool', invariants: false });
const NOW = new Date('2025-06-01T12:00:00Z');

beforeAll(async () => {
  // A schedule's tick would add a process in the middle of tests that count them.
  await deleteSchedules(h);
  await seedProcesses(h.db.pool, 2_000, { now: NOW });
});

const list = async (query: string) => (await h.http.get(`/api/processes?${query}`)).body;
const idOf = async (n: number) =>
  (
    await h.db.pool.query<{ id: string }>(
      `SELECT process_id AS id FROM orchestrator.process_steps WHERE state->>'device' = $1`,
      [`sw-${String(n).padStart(7, '0')}`],
    )
  ).rows[0]!.id;

describe('GET /api/processes?search=', () => {
  it('finds a process by its id or a prefix of it', async () => {
    const id = await idOf(1234);
    for (const text of [id, id.slice(0, 8), id.slice(0, 13), id.toUpperCase().slice(0, 6)]) {
      const r = await list(`search=${encodeURIComponent(text)}`);
      expect(r.items.map((p: any) => p.id)).toContain(id);
      expect(r.items.every((p: any) => p.id.startsWith(text.toLowerCase()))).toBe(true);
    }
    expect(idPrefixRange('3fa8')).toEqual([
      '3fa80000-0000-0000-0000-000000000000',
      '3fa8ffff-ffff-ffff-ffff-ffffffffffff',
    ]);
    expect(idPrefixRange('3fa')).toBeUndefined();
    expect(idPrefixRange('3fa8-1')).toBeUndefined();
  });

  it('finds a value of the current state, not of an earlier step', async () => {
    const r = await list('search=sw-0001500');
    expect(r.total).toBe(1);
    expect(r.items[0].id).toBe(await idOf(1500));
    // A later step that changes the device: the old name no longer finds it, the new one does.
    const id = await idOf(1501);
    await h.db.pool.query(
      `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
       VALUES ($1, 1, 'Step 2', 'success', '{"device": "sw-renamed", "nested": {"rack": "r-9"}}', now())`,
      [id],
    );
    expect((await list('search=sw-0001501')).total).toBe(0);
    expect((await list('search=sw-renamed')).items.map((p: any) => p.id)).toEqual([id]);
    expect((await list('search=r-9')).items.map((p: any) => p.id)).toEqual([id]);
  });

  it('finds by workflow, creator and note words, and combines with the filters', async () => {
    const tasks = await list('search=noop_task&limit=5');
    expect(tasks.total).toBe(200);
    expect(tasks.items.every((p: any) => p.workflowName === 'noop_task')).toBe(true);
    const carol = await list('search=carol&limit=1');
    expect(carol.total).toBe(500);
    const failedCarol = await list('search=carol&status=failed,aborted');
    expect(failedCarol.items.every((p: any) => p.createdBy === 'carol')).toBe(true);
    expect(failedCarol.items.every((p: any) => ['failed', 'aborted'].includes(p.status))).toBe(
      true,
    );
    const note = await list(`search=${encodeURIComponent('window 700')}`);
    expect(note.items.map((p: any) => p.note)).toEqual(['maintenance window 700']);
    expect((await list('search=nothing-like-this')).total).toBe(0);
  });

  it('filters by start time and leaves children out with topLevel', async () => {
    // Process n started n seconds before NOW.
    const after = new Date(NOW.getTime() - 100_500).toISOString();
    const before = new Date(NOW.getTime() - 99_500).toISOString();
    const r = await list(`startedAfter=${after}&startedBefore=${before}`);
    expect(r.total).toBe(1);
    const child = await idOf(42);
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET parent_id = $1, parent_step = 0 WHERE id = $2`,
      [await idOf(43), child],
    );
    const all = await list('limit=1000&search=sw-0000042');
    expect(all.total).toBe(1);
    expect((await list('topLevel=true&search=sw-0000042')).total).toBe(0);
    expect((await list('topLevel=true&limit=1')).total).toBe((await list('limit=1')).total - 1);
  });

  it('answers 400 validation_error for a bad query, and the unfiltered total from the counts', async () => {
    for (const q of ['search=' + 'x'.repeat(201), 'startedAfter=yesterday', 'topLevel=maybe']) {
      const r = await h.http.get(`/api/processes?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('validation_error');
    }
    const { rows } = await h.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM orchestrator.processes WHERE is_task`,
    );
    expect((await list('isTask=true&limit=1')).total).toBe(rows[0]!.n);
    const last = await list('limit=25&offset=1975&sort=startedAt:desc');
    expect(last.items).toHaveLength(25);
    expect(last.items.at(-1).startedAt).toBe(new Date(NOW.getTime() - 2_000_000).toISOString());
  });
});

describe("one step's state", () => {
  it('lists the steps without states, and reads one when asked', async () => {
    const id = await idOf(1501);
    const light = (await h.http.get(`/api/processes/${id}?states=false`)).body;
    expect(light.currentState).toBeUndefined();
    expect(light.steps).toHaveLength(2);
    expect(light.steps[0].state).toBeUndefined();
    expect(light.steps[0].stateSize).toBeGreaterThan(0);
    const full = (await h.http.get(`/api/processes/${id}`)).body;
    expect(full.currentState.device).toBe('sw-renamed');

    const second = await h.http.get(`/api/processes/${id}/state?step=${light.steps[1].id}`);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({
      stepId: light.steps[1].id,
      state: { device: 'sw-renamed', nested: { rack: 'r-9' } },
      stateDelta: { device: 'sw-renamed', nested: { rack: 'r-9' } },
    });
    const current = (await h.http.get(`/api/processes/${id}/state`)).body;
    expect(current).toEqual({ stepId: null, state: full.currentState, stateDelta: null });
  });

  it('answers 400 for a bad step, 404 for a foreign one, 400 invalid_id and 404 for the process', async () => {
    const id = await idOf(1502);
    const foreign = (await h.http.get(`/api/processes/${await idOf(1503)}?states=false`)).body
      .steps[0].id;
    for (const [path, status, code] of [
      [`/api/processes/${id}/state?step=abc`, 400, 'validation_error'],
      [`/api/processes/${id}/state?step=0`, 400, 'validation_error'],
      [`/api/processes/${id}/state?other=1`, 400, 'validation_error'],
      [`/api/processes/${id}/state?step=${foreign}`, 404, 'step_not_found'],
      [`/api/processes/nope/state`, 400, 'invalid_id'],
      [
        `/api/processes/00000000-0000-4000-8000-000000000000/state?step=1`,
        404,
        'process_not_found',
      ],
      [`/api/processes/${id}?states=maybe`, 400, 'validation_error'],
    ] as const) {
      const r = await h.http.get(path);
      expect([r.status, r.body.error?.code], path).toEqual([status, code]);
    }
  });
});

describe('pages far from the start, and broad totals', () => {
  // Counted row by row (a filter the status counts cannot answer), pages are read from the front.
  const front = 'startedAfter=1970-01-01T00:00:00Z';
  const ids = async (q: string) => (await list(q)).items.map((p: any) => p.id);

  it('reads a page past the middle from the other end, the same rows in the same order', async () => {
    const { total } = await list('limit=1');
    for (const sort of ['startedAt:desc', 'startedAt:asc', 'workflowName:asc', 'status:desc'])
      for (const [offset, limit] of [
        [total - 25, 25],
        [total - 10, 25],
        [Math.floor(total * 0.75), 50],
        [total, 25],
      ] as const) {
        const q = `limit=${limit}&offset=${offset}&sort=${sort}`;
        expect(await ids(q), q).toEqual(await ids(`${q}&${front}`));
      }
  });

  it('counts a broad match up to 10,000 and says the total is a lower bound', async () => {
    await seedProcesses(h.db.pool, 9_000, { from: 100_001, now: NOW });
    const broad = await list(`limit=25&${front}`);
    expect(broad).toMatchObject({ total: 10_000, totalCapped: true });
    expect(broad.items).toHaveLength(25);
    const all = await list('limit=25');
    expect(all).toMatchObject({ total: 11_000, totalCapped: false });
    expect(await list('limit=1&search=carol')).toMatchObject({ totalCapped: false });
  });
});

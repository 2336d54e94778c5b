// A state patch before a retry is checked: against the workflow's `patchable` schema, or else
// it keeps the JSON types of the values it replaces unless the caller says `force`. A refused
// patch is 400 with its path, and nothing is written.
import { expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

const h = useHarness({
  executor: 'threadpool',
  env: { WORKFLOWS_DIR: fixtures('workflows-patch') },
});

const written = async (id: string) =>
  (
    await h.db.pool.query(
      `SELECT p.status, p.version, (SELECT count(*)::int FROM orchestrator.process_steps s
                                      WHERE s.process_id = p.id) AS steps
         FROM orchestrator.processes p WHERE p.id = $1`,
      [id],
    )
  ).rows[0];

async function failed(workflow: string): Promise<string> {
  const id = await h.http.start(workflow, { vlan: 100, fail: true });
  await h.http.waitForStatus(id, 'failed');
  return id;
}

async function refused(id: string, body: unknown) {
  const before = await written(id);
  const r = await h.http.put(`/api/processes/${id}/resume`, body);
  expect(r.status).toBe(400);
  expect(r.body.error.code).toBe('validation_error');
  expect(await written(id)).toEqual(before);
  return r.body.error;
}

it('without a schema, a patch keeps the types of the values it replaces unless forced', async () => {
  const id = await failed('set_vlan_loose');
  const error = await refused(id, { state: { vlan: 'one hundred', fail: false } });
  expect(error.details).toEqual([
    {
      path: ['state', 'vlan'],
      code: 'invalid_type',
      message:
        'the value is number, the patch gives string (send "force": true to change its type)',
    },
  ]);
  expect(error.message).toMatch(/^Invalid state patch .*: state\.vlan: the value is number/);
  // Forced, it goes through; and a key the state does not have is not compared.
  const r = await h.http.put(`/api/processes/${id}/resume`, {
    state: { vlan: 'one hundred', fail: false, note: 'typed by hand' },
    force: true,
  });
  expect(r.status).toBe(204);
  const done = await h.http.waitForStatus(id, 'completed');
  expect(done.currentState).toMatchObject({ applied: 'vlan one hundred', note: 'typed by hand' });
});

it("with the workflow's patchable schema, only its keys and values are accepted, forced or not", async () => {
  const id = await failed('set_vlan');
  const range = await refused(id, { state: { vlan: 5000, fail: false } });
  expect(range.details).toMatchObject([{ path: ['state', 'vlan'], code: 'too_big' }]);
  const text = await refused(id, { state: { vlan: 'one hundred' }, force: true });
  expect(text.details).toMatchObject([{ path: ['state', 'vlan'], code: 'invalid_type' }]);
  const other = await refused(id, { state: { applied: 'by hand' } });
  expect(other.details).toMatchObject([{ code: 'unrecognized_keys' }]);

  expect((await h.http.put(`/api/processes/${id}/resume`, { state: { fail: false } })).status).toBe(
    204,
  );
  const done = await h.http.waitForStatus(id, 'completed');
  expect(done.currentState.applied).toBe('vlan 100');
});

// Operators' bulk and single actions on a parent that waits for its children: resume-all leaves it
// waiting (the rule a single resume applies), and a delete is refused while a child goes on.
import { expect, it } from 'vitest';
import { describeBothModes, useHarness } from './support/harness.ts';

describeBothModes('a parent waiting for its children', (executor) => {
  // Room for the parent and its three children at once.
  const h = useHarness({ executor });

  async function waitingParent(): Promise<{ parent: string; children: string[] }> {
    // Three validate_device children, each sleeping 20 s before it validates.
    const parent = await h.http.start('nightly_validation', { delayMs: 20_000 });
    const p = await h.http.waitFor(
      parent,
      (p) => p.status === 'waiting' && (p.children ?? []).length === 3,
    );
    return { parent, children: p.children.map((c: { id: string }) => c.id) };
  }

  async function statuses(ids: string[]): Promise<string[]> {
    return Promise.all(
      ids.map(async (id) => (await h.http.get(`/api/processes/${id}`)).body.status),
    );
  }

  it('resume-all leaves it waiting, as a single resume refuses it', async () => {
    const { parent, children } = await waitingParent();
    const single = await h.http.put(`/api/processes/${parent}/resume`);
    expect(single.status).toBe(409);
    expect(single.body.error.code).toBe('waiting_for_children');

    expect((await h.http.put('/api/processes/resume-all')).body).toEqual({ count: 0 });
    const after = (await h.http.get(`/api/processes/${parent}`)).body;
    expect(after.status).toBe('waiting');
    expect(after.currentState.failures).toBeUndefined();
    for (const status of await statuses(children)) expect(['created', 'running']).toContain(status);

    // Ended by its abort, with its children.
    expect((await h.http.put(`/api/processes/${parent}/abort`)).status).toBe(204);
    for (const child of children) await h.http.waitForStatus(child, 'aborted');
  });

  it('a delete is refused while a child has not ended, and goes through once they have', async () => {
    const { parent, children } = await waitingParent();
    const refused = await h.http.call('DELETE', `/api/processes/${parent}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('has_running_children');
    expect(refused.body.error.details).toMatchObject({ children: 3 });
    expect((await h.http.get(`/api/processes/${parent}`)).status).toBe(200);

    expect((await h.http.put(`/api/processes/${parent}/abort`)).status).toBe(204);
    for (const child of children) await h.http.waitForStatus(child, 'aborted');
    expect((await h.http.call('DELETE', `/api/processes/${parent}`)).status).toBe(204);
    expect((await h.http.get(`/api/processes/${parent}`)).status).toBe(404);
    // The children stay, as ended processes of their own.
    expect(await statuses(children)).toEqual(['aborted', 'aborted', 'aborted']);
  });
});

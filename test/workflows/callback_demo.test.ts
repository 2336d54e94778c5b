import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine } from '../../src/testing.ts';
import callbackDemo from '../../workflows/callback_demo.ts';

const t = await createTestEngine({
  workflows: [callbackDemo],
  databaseUrl: inject('adminUrl'),
  publicUrl: 'https://orchestrator.example',
});
afterAll(() => t.close());

describe('callback_demo', () => {
  it('hands its job a callback URL, waits, and continues with what the job posts', async () => {
    const p = await t.run('callback_demo', {});
    expect(p.status).toBe('awaiting_callback');
    expect(p.callback).toMatchObject({ status: 'pending' });
    // The action put the URL in the state: the one the kit answers through.
    const url = p.currentState.callbackUrl as string;
    expect(url).toBe(t.callbackUrl(p.id));
    expect(url).toMatch(
      new RegExp(`^https://orchestrator\\.example/api/processes/${p.id}/callback/[\\w-]{43}$`),
    );

    const progress = await t.callbackProgress(p.id, { percent: 50 });
    expect(progress.status).toBe('awaiting_callback');
    expect(progress.callback?.progress).toEqual({ percent: 50 });

    const done = await t.callback(p.id, { ok: true });
    expect(done.status).toBe('completed');
    expect(done.currentState).toMatchObject({ result: { ok: true }, finished: true });
    expect((await t.steps(p.id)).map((s) => [s.name, s.status])).toEqual([
      ['Run job', 'awaiting_callback'],
      ['Run job', 'success'],
      ['Finish', 'success'],
    ]);
  });

  it('refuses a second answer with 409 not_awaiting_callback', async () => {
    const p = await t.run('callback_demo', {});
    await t.callback(p.id, { first: true });
    await expect(t.callback(p.id, { second: true })).rejects.toMatchObject({
      code: 'not_awaiting_callback',
    });
    expect((await t.get(p.id)).currentState.result).toEqual({ first: true });
  });

  it('refuses an answer after an abort', async () => {
    const p = await t.run('callback_demo', { timeoutSeconds: 60 });
    expect(p.callback?.expiresAt).toBeTruthy();
    expect((await t.abort(p.id)).status).toBe('aborted');
    await expect(t.callback(p.id, {})).rejects.toMatchObject({ code: 'not_awaiting_callback' });
  });
});

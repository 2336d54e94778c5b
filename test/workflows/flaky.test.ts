import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine } from '../../src/testing.ts';
import flaky from '../../workflows/flaky.ts';

const t = await createTestEngine({ workflows: [flaky], databaseUrl: inject('adminUrl') });
afterAll(() => t.close());

describe('flaky', () => {
  it('fails failTimes times, each resume retrying its step with the attempt raised', async () => {
    const p = await t.run('flaky', { failTimes: 2 });
    expect(p.status).toBe('failed');
    expect(p.failedReason).toMatch(/attempt 1 of 3 fails on purpose/);

    expect((await t.resume(p.id)).status).toBe('failed');
    const done = await t.resume(p.id);
    expect(done.status).toBe('completed');
    expect(done.currentState).toMatchObject({ succeededOnAttempt: 3 });
    expect((await t.steps(p.id)).map((s) => s.status)).toEqual(['failed', 'failed', 'success']);
  });

  it('completes at once when it is told not to fail', async () => {
    const p = await t.run('flaky', { failTimes: 0 });
    expect(p.status).toBe('completed');
    expect(p.currentState).toMatchObject({ succeededOnAttempt: 1 });
  });

  it('takes no input on a retry', async () => {
    const p = await t.run('flaky', { failTimes: 1 });
    await expect(t.resume(p.id, { extra: 1 })).rejects.toMatchObject({ code: 'validation_error' });
  });
});

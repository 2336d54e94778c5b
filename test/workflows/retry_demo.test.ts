import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine } from '../../src/testing.ts';
import retryDemo from '../../workflows/retry_demo.ts';

const t = await createTestEngine({ workflows: [retryDemo], databaseUrl: inject('adminUrl') });
afterAll(() => t.close());

describe('retry_demo', () => {
  it('waits with its retry time after each failure and completes on the next attempt', async () => {
    const started = Date.now();
    const p = await t.run('retry_demo', { failTimes: 2, backoffSeconds: 30 });
    expect(p.status).toBe('waiting');
    // The first retry after backoffSeconds; the next one after twice that.
    expect(+new Date(p.retryAt!) - started).toBeGreaterThanOrEqual(29_000);
    const [second] = await t.advanceRetries();
    expect(second).toMatchObject({ id: p.id, status: 'waiting' });
    expect(+new Date(second!.retryAt!) - Date.now()).toBeGreaterThan(55_000);

    const [done] = await t.advanceRetries();
    expect(done).toMatchObject({ id: p.id, status: 'completed' });
    expect(done!.currentState).toMatchObject({ answeredOnAttempt: 3 });
    // One waiting row, updated per attempt (its retries counted), then the success.
    const steps = await t.steps(p.id);
    expect(steps.map((s) => [s.name, s.status, s.retries])).toEqual([
      ['Call device', 'waiting', 1],
      ['Call device', 'success', 0],
    ]);
    expect(steps[0]!.error).toMatchObject({ message: 'the device did not answer (attempt 2)' });
    expect(await t.advanceRetries()).toEqual([]);
  });

  it('fails once maxAttempts attempts failed', async () => {
    let p = await t.run('retry_demo', { failTimes: 10 });
    for (let i = 0; i < 4; i++) {
      expect(p.status).toBe('waiting');
      [p] = (await t.advanceRetries()) as [typeof p];
    }
    expect(p.status).toBe('failed');
    expect(p.failedReason).toMatch(/the device did not answer \(attempt 5\)/);
  });

  it('retries at once on a resume, without waiting for its time', async () => {
    const p = await t.run('retry_demo', { failTimes: 1 });
    expect(p.status).toBe('waiting');
    const done = await t.resume(p.id);
    expect(done.status).toBe('completed');
    expect(done.currentState).toMatchObject({ answeredOnAttempt: 2 });
  });
});

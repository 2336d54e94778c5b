import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine } from '../../src/testing.ts';
import sleepDemo from '../../workflows/sleep_demo.ts';

const t = await createTestEngine({ workflows: [sleepDemo], databaseUrl: inject('adminUrl') });
afterAll(() => t.close());

describe('sleep_demo', () => {
  it('waits with its wake-up time, and advanceRetries wakes it at once', async () => {
    const p = await t.run('sleep_demo', { seconds: 3600 });
    expect(p.status).toBe('waiting');
    expect(p.lastStep).toBe('Wait');
    expect(+new Date(p.retryAt!) - Date.now()).toBeGreaterThan(3_500_000);
    // No lease held while it sleeps.
    const { rows } = await t.pool.query(
      `SELECT lease_owner FROM orchestrator.processes WHERE id = $1`,
      [p.id],
    );
    expect(rows[0].lease_owner).toBeNull();

    const [done] = await t.advanceRetries();
    expect(done).toMatchObject({ id: p.id, status: 'completed' });
    expect(done!.currentState.sleptMs).toBeLessThan(3_600_000);
    expect((await t.steps(p.id)).map((s) => [s.name, s.status])).toEqual([
      ['Note the time', 'success'],
      ['Wait', 'waiting'],
      ['Wait', 'success'],
      ['Wake up', 'success'],
    ]);
  });

  it('wakes at once on a resume', async () => {
    const p = await t.run('sleep_demo', {});
    expect(p.status).toBe('waiting');
    expect((await t.resume(p.id)).status).toBe('completed');
  });
});

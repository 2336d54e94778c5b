import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine } from '../../src/testing.ts';
import hello from '../../workflows/hello.ts';

// The suite's Postgres (test/support/global-setup.ts); without `databaseUrl` the kit starts its own.
const t = await createTestEngine({ workflows: [hello], databaseUrl: inject('adminUrl') });
afterAll(() => t.close());

describe('hello', () => {
  it('greets, waits for the confirmation, then finishes', async () => {
    const p = await t.run('hello', { name: 'Ada' });
    expect(p.status).toBe('suspended');
    expect(p.lastStep).toBe('Confirm');
    expect(p.currentState).toEqual({ name: 'Ada', greeting: 'Hello, Ada!' });
    expect(p.form).toMatchObject({ properties: { confirmed: { type: 'boolean' } } });

    const done = await t.resume(p.id, { confirmed: true });
    expect(done.status).toBe('completed');
    expect(done.currentState).toMatchObject({ confirmed: true, finished: true });
    expect((await t.steps(p.id)).map((s) => [s.name, s.status])).toEqual([
      ['Greet', 'success'],
      ['Confirm', 'suspend'],
      ['Confirm', 'success'],
      ['Finish', 'success'],
    ]);
  });

  it('refuses an invalid start or input with the engine’s error codes, writing nothing', async () => {
    await expect(t.run('hello', { name: '' })).rejects.toMatchObject({ code: 'validation_error' });
    const p = await t.run(hello, { name: 'Bob' });
    await expect(t.resume(p.id, { confirmed: 'yes' })).rejects.toMatchObject({
      code: 'validation_error',
    });
    expect((await t.get(p.id)).status).toBe('suspended');
    await t.resume(p.id, { confirmed: false });
    await expect(t.resume(p.id, { confirmed: true })).rejects.toMatchObject({
      code: 'not_resumable',
    });
  });

  it('records who started and resumed it', async () => {
    const p = await t.run('hello', { name: 'Cy' }, { user: 'alice' });
    const done = await t.resume(p.id, { confirmed: true }, { user: 'bob' });
    expect(done.createdBy).toBe('alice');
    const steps = await t.steps(p.id);
    expect(steps.find((s) => s.name === 'Confirm' && s.status === 'success')?.createdBy).toBe(
      'bob',
    );
  });
});

import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine, OrchestratorError } from '../../src/testing.ts';
import provisionPort from '../../workflows/provision_port.ts';

const t = await createTestEngine({ workflows: [provisionPort], databaseUrl: inject('adminUrl') });
afterAll(() => t.close());

describe('provision_port', () => {
  it('asks for a port of the device chosen on the first page of its start form', async () => {
    const err = await t.run('provision_port', { device: 'leaf-2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchestratorError);
    expect(err).toMatchObject({
      code: 'form_incomplete',
      details: { page: 1, form: { properties: { port: { enum: ['Ethernet1', 'Ethernet2'] } } } },
    });
    // Nothing was written.
    const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM orchestrator.processes`);
    expect(rows[0].n).toBe(0);
    await expect(
      t.run('provision_port', [{ device: 'leaf-2' }, { port: 'Ethernet49/1' }]),
    ).rejects.toMatchObject({ code: 'validation_error' });
  });

  it('configures the port in its group, then waits for the confirmation', async () => {
    const p = await t.run('provision_port', [{ device: 'leaf-1' }, { port: 'Ethernet3' }]);
    expect(p.status).toBe('suspended');
    expect(p.currentState).toMatchObject({
      reserved: 'leaf-1:Ethernet3',
      config: expect.stringContaining('interface Ethernet3'),
    });
    expect(p.steps.map((s) => [s.name, s.group])).toEqual([
      ['Reserve port', 'Configure'],
      ['Apply config', 'Configure'],
      ['Confirm', null],
    ]);
    // The confirmation form shows the choice, read-only, with its default.
    expect(p.form).toMatchObject({
      properties: { device: { const: 'leaf-1', readOnly: true }, port: { const: 'Ethernet3' } },
    });
    const done = await t.resume(p.id, { confirmed: true });
    expect(done.status).toBe('completed');
    expect(done.currentState).toMatchObject({
      device: 'leaf-1',
      port: 'Ethernet3',
      confirmed: true,
    });
  });

  it('holds its device until it ends: a second start for it is refused with 409', async () => {
    const first = await t.run('provision_port', [{ device: 'spine-1' }, { port: 'Ethernet50/1' }]);
    expect(first.locks).toEqual({ held: ['device:spine-1'], waitingFor: [] });

    const refused = t.run('provision_port', [{ device: 'spine-1' }, { port: 'Ethernet49/1' }]);
    await expect(refused).rejects.toMatchObject({
      code: 'resource_locked',
      details: { keys: ['device:spine-1'], held: [{ key: 'device:spine-1', holder: first.id }] },
    });
    // Another device is free.
    const other = await t.run('provision_port', [{ device: 'leaf-2' }, { port: 'Ethernet1' }]);
    expect(other.status).toBe('suspended');

    // Once the first one ends, the device is free again.
    expect((await t.abort(first.id)).locks).toEqual({ held: [], waitingFor: [] });
    const next = await t.run('provision_port', [{ device: 'spine-1' }, { port: 'Ethernet49/1' }]);
    expect(next.status).toBe('suspended');
    expect(next.locks?.held).toEqual(['device:spine-1']);
  });
});

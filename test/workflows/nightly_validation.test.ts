import { afterAll, describe, expect, it, inject } from 'vitest';
import { createTestEngine } from '../../src/testing.ts';
import nightlyValidation from '../../workflows/nightly_validation.ts';
import validateDevice from '../../workflows/validate_device.ts';

const t = await createTestEngine({
  workflows: [nightlyValidation, validateDevice],
  databaseUrl: inject('adminUrl'),
});
afterAll(() => t.close());

describe('nightly_validation', () => {
  it('validates every device in a child process each, and reports the failures', async () => {
    // `run` returns once the process and its children have stopped moving.
    const p = await t.run('nightly_validation', {});
    expect(p.status).toBe('completed');
    expect(p.currentState.checked).toBe(3);
    const failures = p.currentState.failures as { device: string; problems: string[] }[];
    expect(failures.map((f) => [f.device, f.problems]).sort()).toEqual([
      ['leaf-2', ['only 2 ports']],
      ['spine-1', ['only 2 ports']],
    ]);
    const children = p.currentState.validations as { id: string; status: string }[];
    expect(children.map((c) => c.status)).toEqual(['completed', 'completed', 'completed']);
    const child = await t.get(children[0]!.id);
    expect(child).toMatchObject({ workflowName: 'validate_device', status: 'completed' });
  });
});

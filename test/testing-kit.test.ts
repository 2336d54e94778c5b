// The test kit under node:test: `node --test test/testing-kit.test.ts` (the kit starts its own
// embedded Postgres, or uses DATABASE_URL). Under vitest (`npm test`) this file runs itself that
// way in a child process, and checks that the kit's Postgres is gone once that process exited.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { workflow, z } from '../src/index.ts';
import { createTestEngine, OrchestratorError, type TestEngine } from '../src/testing.ts';

const file = fileURLToPath(import.meta.url);

if (process.env.VITEST) {
  const { expect, it: vitestIt } = await import('vitest');
  const kitDirs = () =>
    new Set(fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('orchestrator-testkit-')));

  vitestIt(
    'passes under node --test, and its embedded Postgres is stopped and removed at exit',
    async () => {
      const existing = kitDirs();
      const env = Object.fromEntries(
        Object.entries(process.env).filter(
          ([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS',
        ),
      );
      const child = spawn(process.execPath, ['--test', '--test-reporter=tap', file], { env });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (out += d));
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(out).toMatch(/# pass [1-9]/);
      expect(out).toMatch(/# fail 0/);
      expect(code, out).toBe(0);
      if (process.env.DATABASE_URL) return;
      // The keeper removes its folder once its Postgres stopped, just after the test process exited.
      const deadline = Date.now() + 15_000;
      let left = [...kitDirs()].filter((d) => !existing.has(d));
      while (left.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        left = [...kitDirs()].filter((d) => !existing.has(d));
      }
      expect(left).toEqual([]);
    },
  );
} else {
  let calls = 0;
  const order = workflow({
    name: 'order',
    target: 'create',
    description: 'Reserves stock (the warehouse fails once), then waits for the payment',
    input: z.object({ item: z.string(), quantity: z.number().int().positive() }),
  })
    .retryStep(
      'Reserve stock',
      ({ state, attempt }) => {
        calls++;
        if (attempt === 1) throw new Error('warehouse busy');
        return { reservation: `${state.item}×${state.quantity}` };
      },
      { maxAttempts: 3, backoffSeconds: 60 },
    )
    .inputStep('Payment', z.object({ paid: z.boolean() }))
    .step('Ship', ({ state }) => {
      if (!state.paid) throw new Error('not paid');
      return { shipped: true };
    });

  let t: TestEngine;
  before(async () => {
    t = await createTestEngine({ workflows: [order] });
  });
  after(() => t.close());

  void describe('the test kit under node:test', () => {
    void it('runs a workflow defined in the test through retries, input and failure', async () => {
      let p = await t.run(order, { item: 'widget', quantity: 2 });
      assert.equal(p.status, 'waiting');
      assert.ok(p.retryAt);

      const [advanced] = await t.advanceRetries();
      assert.equal(advanced?.status, 'suspended');
      assert.equal(advanced?.currentState.reservation, 'widget×2');
      assert.equal(calls, 2);

      p = await t.resume(p.id, { paid: false });
      assert.equal(p.status, 'failed');
      assert.equal(p.failedReason, 'not paid');
      const steps = await t.steps(p.id);
      assert.deepEqual(
        steps.map((s) => [s.name, s.status]),
        [
          ['Reserve stock', 'waiting'],
          ['Reserve stock', 'success'],
          ['Payment', 'suspend'],
          ['Payment', 'success'],
          ['Ship', 'failed'],
        ],
      );
    });

    void it('surfaces the engine’s errors with their code', async () => {
      await assert.rejects(t.run('order', { item: 'widget' }), (err: unknown) => {
        assert.ok(err instanceof OrchestratorError);
        assert.equal(err.code, 'validation_error');
        return true;
      });
      await assert.rejects(t.run('nope', {}), { code: 'workflow_not_found' });
    });
  });
}

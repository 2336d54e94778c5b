// The test kit under node:test: `node --test test/testing-kit.test.ts` (the kit starts its own
// embedded Postgres, or uses DATABASE_URL). Under vitest (`npm test`) this file runs itself that
// way in a child process, and checks that the kit's Postgres is gone once that process exited.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/api/app.ts';
import type { ApiContext } from '../src/api/route.ts';
import { silentLogger } from '../src/config/logger.ts';
import { NODE_FLAGS } from '../src/config/node-flags.ts';
import { createEngineMetrics } from '../src/engine/metrics.ts';
import { workflow, z } from '../src/index.ts';
import {
  createTestEngine,
  OrchestratorError,
  type TestEngine,
  type TestProcess,
} from '../src/testing.ts';
import postFromThread from './fixtures/workflows-testkit/post_from_thread.ts';
import { fixtures } from './support/paths.ts';

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
      const child = spawn(
        process.execPath,
        [...NODE_FLAGS, '--test', '--test-reporter=tap', file],
        { env },
      );
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

  const repairable = workflow({
    name: 'repairable',
    target: 'modify',
    description: 'A check that fails until an operator skips it',
  })
    .step('Check', () => {
      throw new Error('check broken');
    })
    .step('Finish', () => ({ finished: true }));

  const job = workflow({ name: 'job', target: 'modify', description: 'Waits for its job' })
    .callbackStep('Run job', { action: () => {}, timeoutSeconds: 600 })
    .step('Done', () => ({ done: true }));

  // Ignores its signal and runs past its time limit: failed with StepTimeout, as on step threads.
  const overtime = workflow({ name: 'overtime', target: 'modify' }).step(
    'Too long',
    async () => {
      await sleep(3_000);
      return { finished: true };
    },
    { timeLimitSeconds: 0.3 },
  );

  let t: TestEngine;
  before(async () => {
    t = await createTestEngine({
      workflows: [order, repairable, job, overtime],
      abortGraceMs: 200,
    });
  });
  after(() => t.close());

  /** Serves the REST API on the test engine for the length of `fn`. */
  async function serving(fn: (url: string) => Promise<void>): Promise<void> {
    const unavailable = () => {
      throw new Error('not in this test');
    };
    const context: ApiContext = {
      engine: t.engine,
      pool: t.pool,
      scheduler: new Proxy({}, { get: () => unavailable }) as ApiContext['scheduler'],
      executor: 'threadpool',
      queues: [],
      metrics: createEngineMetrics(),
      liveClients: () => 0,
    };
    const server = http.createServer(createApp({ ...context, logger: silentLogger }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }

  void describe('the test kit under node:test', () => {
    void it('runs a workflow defined in the test through retries, input and failure', async () => {
      let p: TestProcess = await t.run(order, { item: 'widget', quantity: 2 });
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

    void it('fails a step past its time limit with StepTimeout, as the step threads do', async () => {
      const p = await t.run(overtime);
      assert.equal(p.status, 'failed');
      assert.equal(p.failedReason, 'the step ran past its time limit of 0.3 s');
      assert.deepEqual(p.steps.at(-1)?.error, {
        name: 'StepTimeout',
        message: 'the step ran past its time limit of 0.3 s',
      });
    });

    void it('surfaces the engine’s errors with their code', async () => {
      await assert.rejects(t.run('order', { item: 'widget' }), (err: unknown) => {
        assert.ok(err instanceof OrchestratorError);
        assert.equal(err.code, 'validation_error');
        return true;
      });
      await assert.rejects(t.run('nope', {}), { code: 'workflow_not_found' });
    });

    void it('skips a failed step, as PUT /api/processes/:id/skip does', async () => {
      let p: TestProcess = await t.run(repairable);
      assert.equal(p.status, 'failed');
      assert.equal(p.failedReason, 'check broken');

      p = await t.skip(p.id, { user: 'operator' });
      assert.equal(p.status, 'completed');
      assert.deepEqual(p.currentState, { finished: true });
      assert.deepEqual(
        p.steps.map((s) => [s.name, s.status, s.createdBy]),
        [
          ['Check', 'failed', 'test'],
          ['Check', 'skipped', 'operator'],
          ['Finish', 'success', 'operator'],
        ],
      );
      // Only a failed step can be skipped.
      await assert.rejects(t.skip(p.id), { code: 'not_repairable' });
    });

    void it('returns processes exactly as GET /api/processes/:id does: dates as ISO strings', async () => {
      const waiting = await t.run(order, { item: 'bolt', quantity: 1 });
      assert.equal(waiting.status, 'waiting');
      assert.equal(typeof waiting.retryAt, 'string');
      assert.equal(waiting.retryAt, new Date(waiting.retryAt!).toISOString());
      const [suspended] = await t.advanceRetries();
      assert.equal(suspended?.status, 'suspended');
      assert.ok(suspended.form);
      const failed = await t.run(repairable);
      const pending = await t.run(job);
      assert.equal(pending.status, 'awaiting_callback');
      assert.equal(pending.callback?.status, 'pending');

      await serving(async (api) => {
        const read = async (id: string) => {
          const res = await fetch(`${api}/api/processes/${id}`);
          assert.equal(res.status, 200);
          return (await res.json()) as unknown;
        };
        for (const p of [suspended, failed, pending]) {
          assert.deepEqual(p, await read(p.id));
          assert.deepEqual(await t.get(p.id), await read(p.id));
        }
        const steps = (await t.get(pending.id)).steps;
        assert.ok(steps.length > 0);
        for (const s of steps) assert.equal(typeof s.startedAt, 'string');
      });
    });
  });

  void describe("the test kit with steps: 'threads'", () => {
    let threads: TestEngine;
    before(async () => {
      threads = await createTestEngine({
        steps: 'threads',
        workflowsDir: fixtures('workflows-testkit'),
        stepThreads: 1,
      });
    });
    after(() => threads.close());

    void it('runs steps on step threads, which live between steps as in production', async () => {
      // A Node.js server closes a kept-alive socket after keepAliveTimeout; a step thread parked
      // between steps would not see it, and would hand the dead socket to the next step's fetch.
      const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => res.end('ok'));
      });
      server.keepAliveTimeout = 3_000;
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      try {
        const outcomes = [];
        // At 0 s, at the server's timeout, and well past it.
        for (const wait of [0, 3_000, 9_000]) {
          await sleep(wait);
          const p = await threads.run(postFromThread, { url });
          outcomes.push([p.status, p.failedReason, p.currentState]);
        }
        const ok = { url, status: 200, body: 'ok', mainThread: false };
        assert.deepEqual(outcomes, [
          ['completed', null, ok],
          ['completed', null, ok],
          ['completed', null, ok],
        ]);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });
}

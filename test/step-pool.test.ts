// The step pool: steps waiting on I/O share a thread, and a step that ignores its abort is
// abandoned without harming the other steps on its thread.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createStepPool, StepAbandonedError, type StepPool } from '../src/engine/step-pool.ts';
import { fixtures } from './support/paths.ts';

let pool: StepPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const task = (index: number, ms: number, processId: string) => ({
  workflow: 'stamped',
  index,
  state: { ms },
  processId,
  attempt: 1,
});

describe('step pool', () => {
  it('runs waiting steps side by side on one thread', async () => {
    pool = createStepPool({ workflowsDir: fixtures('workflows-steps'), maxThreads: 1 });
    const never = new AbortController().signal;
    const [a, b] = await Promise.all([
      pool.run(task(0, 300, 'a'), never),
      pool.run(task(0, 300, 'b'), never),
    ]);
    if (!a.ok || !b.ok) throw new Error('steps failed');
    const [sa, ea, sb, eb] = [a.delta.start, a.delta.end, b.delta.start, b.delta.end] as number[];
    // Both were waiting at the same time: each started before the other ended.
    expect(sa! < eb! && sb! < ea!).toBe(true);
  });

  it('abandons a step that ignores its abort; the steps sharing its thread carry on', async () => {
    pool = createStepPool({
      workflowsDir: fixtures('workflows-steps'),
      maxThreads: 1,
      abortGraceMs: 100,
    });
    const abort = new AbortController();
    const stubborn = pool.run(task(1, 3_000, 'stubborn'), abort.signal);
    const innocent = pool.run(task(0, 1_000, 'innocent'), new AbortController().signal);
    setTimeout(() => abort.abort(), 50);
    await expect(stubborn).rejects.toThrow(StepAbandonedError);
    const outcome = await innocent;
    expect(outcome.ok).toBe(true);
  });

  it('a step thread lives between tasks: an idle kept-alive socket the server closed is not reused', async () => {
    // A Node.js server closes a kept-alive socket after keepAliveTimeout. A thread parked between
    // tasks never reads that close and hands the dead socket to the next step's fetch.
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    server.keepAliveTimeout = 3_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    pool = createStepPool({ workflowsDir: fixtures('workflows-steps'), maxThreads: 1 });
    const never = new AbortController().signal;
    try {
      const outcomes = [];
      // At 0 s, at the server's timeout, and well past it: the third reused a closed socket.
      for (const wait of [0, 3_000, 9_000]) {
        await sleep(wait);
        const outcome = await pool.run(
          { workflow: 'post_json', index: 0, state: { url }, processId: 'p', attempt: 1 },
          never,
        );
        outcomes.push(outcome.ok ? outcome.delta : outcome.error);
      }
      expect(outcomes).toEqual([
        { status: 200, body: 'ok' },
        { status: 200, body: 'ok' },
        { status: 200, body: 'ok' },
      ]);
    } finally {
      server.close();
    }
  }, 30_000);
});

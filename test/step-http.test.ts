// Steps that call an HTTP API with the runtime's fetch, through the engine in both executors: a
// step thread keeps living between steps, so a kept-alive socket the server closed while the
// thread was idle is not handed to the next step (it failed with `fetch failed` / EPIPE).
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { client } from './support/api.ts';
import { describeBothModes, useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 3_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const env = { WORKFLOWS_DIR: fixtures('workflows-steps'), STEP_THREADS: '1' };

async function callsAcrossIdleSockets(http: ReturnType<typeof client>): Promise<unknown[]> {
  const states = [];
  // At 0 s, at the server's keep-alive timeout, and well past it.
  for (const wait of [0, 3_000, 9_000]) {
    await sleep(wait);
    const id = await http.start('post_json', { url });
    const p = await http.waitFor(id, (p) => p.status !== 'created' && p.status !== 'running');
    states.push({ status: p.status, response: p.currentState.status });
  }
  return states;
}

const completed = Array(3).fill({ status: 'completed', response: 200 });

describeBothModes('a step calling an HTTP API', (executor) => {
  // Worker mode: one worker process, on every queue.
  const h = useHarness({ executor, env, workerArgs: ['--queues', 'all'] });

  it(
    'reuses no socket the server closed while the step thread was idle',
    async () => {
      expect(await callsAcrossIdleSockets(h.http)).toEqual(completed);
    },
    executor === 'worker' ? 60_000 : 40_000,
  );
});

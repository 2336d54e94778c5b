// Steps that call an HTTP API with the runtime's fetch, through the engine in both executors: a
// step thread keeps living between steps, so a kept-alive socket the server closed while the
// thread was idle is not handed to the next step (it failed with `fetch failed` / EPIPE).
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, startApi } from './support/api.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { fixtures } from './support/paths.ts';
import { killAll } from './support/spawn.ts';
import { startWorkerModeApi, startWorkerProcess } from './support/workers.ts';

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

describe('a step calling an HTTP API, threadpool', () => {
  let db: TestDatabase;
  let api: Awaited<ReturnType<typeof startApi>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db.url, env);
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  it('reuses no socket the server closed while the step thread was idle', async () => {
    expect(await callsAcrossIdleSockets(client(api.url))).toEqual(completed);
  }, 40_000);
});

describe('a step calling an HTTP API, worker mode', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await killAll();
    await db?.drop();
  });

  it('reuses no socket the server closed while the step thread was idle', async () => {
    const { http } = await startWorkerModeApi(db.url, env);
    await startWorkerProcess(db.url, ['--queues', 'all'], env);
    expect(await callsAcrossIdleSockets(http)).toEqual(completed);
  }, 60_000);
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';
import { client } from './support/api.ts';
import { freePort } from './support/ports.ts';
import { spawnNode, waitForOutput } from './support/spawn.ts';

// The APIs are the tests' own, spawned and killed.
const h = useHarness({ invariants: true });

const listening = /orchestrator listening/;

describe('crash of the API in threadpool mode', () => {
  it('kill -9 mid-step: a restarted API continues from the last committed step, each step committed once', async () => {
    const port = await freePort();
    const env = { DATABASE_URL: h.db.url, PORT: String(port), LEASE_SECONDS: '2' };
    const first = spawnNode('src/cli/serve.ts', [], env);
    await waitForOutput(first, listening);
    const http = client(`http://127.0.0.1:${port}`);
    const id = await http.start('slow', { sleepMs: 400 });
    await http.waitFor(id, (p) => p.steps.length >= 2);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    const second = await h.startApi({ LEASE_SECONDS: '2' });
    try {
      const done = await client(second.url).waitForStatus(id, 'completed', 30_000);
      expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
      expect(done.steps.map((s: any) => [s.name, s.status])).toEqual(
        [1, 2, 3, 4, 5].map((n) => [`Step ${n}`, 'success']),
      );
    } finally {
      await second.close();
    }
  });

  it('SIGTERM: the API gives back a process mid-way and exits 0; the next start continues it', async () => {
    const port = await freePort();
    const first = spawnNode('src/cli/serve.ts', [], {
      DATABASE_URL: h.db.url,
      PORT: String(port),
      LOG_LEVEL: 'info',
    });
    await waitForOutput(first, listening);
    const http = client(`http://127.0.0.1:${port}`);
    const id = await http.start('slow', { sleepMs: 300 });
    await http.waitFor(id, (p) => p.steps.length >= 1);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const { rows } = await h.db.pool.query(
      `SELECT status, lease_token FROM orchestrator.processes WHERE id = $1`,
      [id],
    );
    expect(rows[0]).toEqual({ status: 'resumed', lease_token: null });

    const second = await h.startApi();
    try {
      const done = await client(second.url).waitForStatus(id, 'completed');
      expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
      expect(done.steps).toHaveLength(5);
    } finally {
      await second.close();
    }
  });
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('embedded Postgres', () => {
  it('starts by default, refuses a second instance on the same data, and stops with the API', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-data-'));
    fs.chmodSync(dataDir, 0o755);
    const pgPort = await freePort();
    const env = { DATABASE_URL: '', DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort) };
    try {
      const apiPort = await freePort();
      const first = spawnNode('src/cli/serve.ts', [], { ...env, PORT: String(apiPort) });
      await waitForOutput(first, listening, 60_000);
      const http = client(`http://127.0.0.1:${apiPort}`);
      expect((await http.get('/api/health')).status).toBe(200);
      const id = await http.start('noop');
      await http.waitForStatus(id, 'completed');

      const second = spawnNode('src/cli/serve.ts', [], { ...env, PORT: String(await freePort()) });
      expect(await second.exited).toBe(1);
      expect(second.output()).toMatch(/Another orchestrator \(pid \d+\) is already running/);
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('completed');

      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
      expect(await portOpen(pgPort)).toBe(false);
      expect(fs.existsSync(path.join(dataDir, 'orchestrator.pid'))).toBe(false);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// Worker mode: the callback URL a callback step hands out reaches the API that serves it. A worker
// without PUBLIC_URL takes the address the API recorded at its start, never an address of its own
// guessing (it handed out http://127.0.0.1:8080 whatever the API's address); with no address at
// all, the step fails saying so.
import { expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';

const h = useHarness({ executor: 'worker', workers: 0 });

it('fails the callback step with a clear reason while no API has recorded its address', async () => {
  // As after a worker ran against a database no API has started on.
  await h.db.pool.query(`UPDATE orchestrator.engine_settings SET public_url = NULL`);
  await h.startWorker(['--queues', 'all']);
  const id = await h.http.start('callback_demo');
  const p = await h.http.waitForStatus(id, 'failed');
  expect(p.failedReason).toMatch(/no address for callback URLs: set PUBLIC_URL on the worker/);
});

it("hands out the API's own address, and the callback it leads to completes the process", async () => {
  // The API records it at start; this one listens on a port of its own, not 8080.
  await h.restartApi();
  const id = await h.http.start('callback_demo');
  const p = await h.http.waitForStatus(id, 'awaiting_callback');
  const url: string = p.currentState.callbackUrl;
  expect(url.startsWith(`${h.url}/api/processes/${id}/callback/`)).toBe(true);
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ok: true }),
  });
  expect(answer.status).toBe(204);
  await h.http.waitForStatus(id, 'completed');
});

it('takes PUBLIC_URL when the worker has one', async () => {
  await h.startWorker(['--queues', 'all'], { PUBLIC_URL: 'https://orchestrator.example.net/' });
  // Both workers consume: start until one of the new worker's URLs shows.
  for (let i = 0; i < 20; i++) {
    const id = await h.http.start('callback_demo');
    const p = await h.http.waitForStatus(id, 'awaiting_callback');
    const url: string = p.currentState.callbackUrl;
    if (url.startsWith('https://orchestrator.example.net/api/processes/')) return;
    expect(url.startsWith(h.url)).toBe(true);
  }
  throw new Error('the worker with PUBLIC_URL never ran a callback step');
});

import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { startOrchestrator, type Orchestrator } from '../../src/server.ts';

/** Starts the orchestrator in this process on a free port against `databaseUrl`. */
export async function startApi(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<Orchestrator> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', STEP_THREADS: '2', ...env });
  return startOrchestrator(config, silentLogger);
}

export interface Response<T = unknown> {
  status: number;
  body: T;
}

/** A small JSON client for the REST API. `body` as a string is sent raw. */
export function client(baseUrl: string) {
  async function call<T = any>(method: string, path: string, body?: unknown): Promise<Response<T>> {
    const res = await fetch(baseUrl + path, {
      method,
      // Writes say JSON also without a body, as the API asks without authentication.
      headers: method === 'GET' ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }
  return {
    call,
    get: <T = any>(p: string) => call<T>('GET', p),
    post: <T = any>(p: string, b?: unknown) => call<T>('POST', p, b),
    put: <T = any>(p: string, b?: unknown) => call<T>('PUT', p, b),
    /** Starts a workflow and returns the new process id (fails the test on anything but 201). */
    async start(workflow: string, input: unknown = {}): Promise<string> {
      const r = await call<{ id: string }>('POST', `/api/processes/${workflow}`, input);
      if (r.status !== 201)
        throw new Error(`start ${workflow}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.id;
    },
    /** Polls the process until `pred` holds (every 20 ms, up to `timeoutMs`). */
    async waitFor(id: string, pred: (p: any) => boolean, timeoutMs = 20_000): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await call('GET', `/api/processes/${id}`)).body;
        if (pred(last)) return last;
        await sleep(20);
      }
      throw new Error(
        `process ${id} did not reach the expected state; last: ${JSON.stringify(last)?.slice(0, 500)}`,
      );
    },
    waitForStatus(id: string, status: string, timeoutMs?: number) {
      return this.waitFor(id, (p) => p.status === status, timeoutMs);
    },
  };
}

// Worker mode in tests: the API (EXECUTOR=worker) and worker processes, spawned for real.
import { client } from './api.ts';
import { freePort } from './ports.ts';
import { spawnNode, waitForOutput, type Spawned } from './spawn.ts';

export const workerReady = /worker ready/;
export const apiListening = /orchestrator listening/;

/** Starts `npm run worker -- ...args` against `databaseUrl` and waits until it consumes. */
export async function startWorkerProcess(
  databaseUrl: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Spawned> {
  const w = spawnNode('src/cli/worker.ts', args, { DATABASE_URL: databaseUrl, ...env });
  await waitForOutput(w, workerReady, 60_000);
  return w;
}

/** Starts the API in worker mode as a child process; returns it with a client on its port. */
export async function startWorkerModeApi(databaseUrl: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const api = spawnNode('src/cli/serve.ts', [], {
    DATABASE_URL: databaseUrl,
    EXECUTOR: 'worker',
    PORT: String(port),
    ...env,
  });
  await waitForOutput(api, apiListening, 60_000);
  return { api, port, http: client(`http://127.0.0.1:${port}`) };
}

/** Sends SIGTERM and resolves with the exit code. */
export async function terminate(p: Spawned): Promise<number | string> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return p.exited;
}

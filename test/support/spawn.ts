import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { NODE_FLAGS } from '../../src/config/node-flags.ts';
import { root } from './paths.ts';

export interface Spawned {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited: Promise<number | string>;
}

/** The children still running, each with the script it runs. */
const children = new Map<ChildProcess, string>();

/** Starts `node <script> ...args` from the repository root with `env` added to the environment. */
export function spawnNode(script: string, args: string[], env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [...NODE_FLAGS, script, ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.set(child, script);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child);
    return (code as number | null) ?? (signal as string);
  });
  return { child, output: () => out, exited };
}

/** Waits until the process printed `pattern` (or fails when it exits first or time runs out). */
export async function waitForOutput(
  p: Spawned,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void p.exited.then(() => (ended = true));
  while (!pattern.test(p.output())) {
    if (ended) throw new Error(`process exited before printing ${pattern}:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The processes spawned by this test file that have not exited yet: `node <script>` each. */
export function runningChildren(): string[] {
  return [...children.values()];
}

/** Kills every process spawned by this test file that is still running (for afterAll). */
export async function killAll(): Promise<void> {
  const left = [...children.keys()];
  for (const c of left) c.kill('SIGKILL');
  await Promise.all(
    left.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)),
  );
}

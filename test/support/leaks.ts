// After each test file (a setup file of vitest.config.ts, so its afterAll runs after the file's
// own): nothing the file started may outlive it. Its servers, its connections (pools not ended,
// sockets not closed) and its child processes must be gone; timers and the like are left to the
// runner. The file fails with what is left, and the left children are killed.
//
// With TEST_RUNNING_DIR set (.ci/run sets it), each test process also keeps a file there, named
// by its pid, that says which test it is in: a test process that dies (a fatal error in Node.js,
// a signal) leaves it behind, naming the test it died in.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { killAll, runningChildren } from './spawn.ts';

const runningDir = process.env.TEST_RUNNING_DIR;
const marker = runningDir ? path.join(runningDir, String(process.pid)) : undefined;
if (runningDir) fs.mkdirSync(runningDir, { recursive: true });
const mark = (what: string) => {
  if (marker) fs.writeFileSync(marker, `${what}\n`);
};
beforeEach((ctx) => mark(`${ctx.task.file.name} › ${ctx.task.name}`));

/** Resources that only a test's own servers, clients and children hold. */
const OWN = new Set([
  'TCPServerWrap',
  'TCPSocketWrap',
  'TCPWrap',
  'PipeServerWrap',
  'PipeWrap',
  'ProcessWrap',
  'UDPWrap',
  'ConnectWrap',
]);
/** Closing is asynchronous: how long what was closed may take to be gone. */
const GRACE_MS = 5_000;

let before = new Map<string, number>();

function own(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo())
    if (OWN.has(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function left(): string[] {
  const now = own();
  const more = [...now].filter(([r, n]) => n > (before.get(r) ?? 0));
  return [
    ...more.map(([r, n]) => `${n - (before.get(r) ?? 0)} × ${r}`),
    ...runningChildren().map((c) => `child process ${c}`),
  ];
}

/** Where the open sockets go, to tell whose they are (node's undocumented handle list). */
function openSockets(): string {
  const handles = (process as unknown as { _getActiveHandles?(): unknown[] })._getActiveHandles;
  const ends = (handles?.call(process) ?? [])
    .map((h) => h as { localPort?: number; remotePort?: number })
    .filter((h) => h.localPort !== undefined)
    .map((h) => `${h.localPort ?? ''} → ${h.remotePort ?? '(listening)'}`);
  return ends.length > 0 ? `; sockets: ${ends.join(', ')}` : '';
}

beforeAll(() => {
  before = own();
  mark(`${path.relative(process.cwd(), expect.getState().testPath ?? '?')} (its beforeAll)`);
});

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let found = left();
  while (found.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    found = left();
  }
  if (marker) fs.rmSync(marker, { force: true });
  if (found.length === 0) return;
  const sockets = openSockets();
  await killAll();
  throw new Error(
    `left open after the file's tests: ${found.join(', ')}${sockets} (close the APIs, servers, ` +
      `pools, sockets and browsers it started; the harness closes what it started itself)`,
  );
});

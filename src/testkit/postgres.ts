// The test kit's Postgres: `databaseUrl` or DATABASE_URL when set (a server on which the kit may
// create databases), else an embedded Postgres started once per process in a temporary folder on
// a free port, by a small keeper process (this file run with KEEPER_FLAG) that stops it and
// removes the folder when this process exits (however it exits). Each test engine gets a fresh
// database cloned from a migrated template (migrated once per server and schema version).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../config/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.ts';
import { cloneDatabase } from '../db/templates.ts';

const KEEPER_FLAG = '--orchestrator-test-postgres';
const POSTGRES_FLAGS = [
  '-c',
  'fsync=off',
  '-c',
  'synchronous_commit=off',
  '-c',
  'full_page_writes=off',
  '-c',
  'max_connections=200',
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The keeper (this file run with KEEPER_FLAG): starts an embedded Postgres in a temporary folder,
 * prints its connection string, and when its parent goes (its stdin closes) stops it and removes
 * the folder.
 */
async function keepPostgres(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-testkit-'));
  // As root, Postgres runs as the user `postgres`, which must enter the folder.
  fs.chmodSync(dir, 0o755);
  const starting = (async (): Promise<EmbeddedDatabase> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const port = await freePort();
        return await startEmbeddedPostgres({
          dataDir: dir,
          port,
          logger: silentLogger,
          postgresFlags: POSTGRES_FLAGS,
        });
      } catch (err) {
        // The port may have been taken between the look and the bind.
        if (attempt >= 3) throw err;
      }
    }
  })();
  let stopping: Promise<void> | undefined;
  const stop = (code: number) =>
    (stopping ??= (async () => {
      await starting.then((db) => db.stop()).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(code);
    })());
  process.stdin.on('end', () => void stop(0));
  process.stdin.on('close', () => void stop(0));
  process.stdin.resume();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => void stop(0));
  try {
    const db = await starting;
    process.stdout.write(`${JSON.stringify({ connectionString: db.connectionString })}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    await stop(1);
  }
}

/** Starts the keeper and waits for its Postgres; nothing of it keeps this process alive. */
function startKeeper(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), KEEPER_FLAG], {
      // Its own process group: a Ctrl-C here reaches it as the end of its stdin, after which it
      // stops Postgres and cleans up.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const fail = (why: string) =>
      reject(new Error(`The test kit's embedded Postgres did not start: ${why}\n${err}`.trim()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => fail(e.message));
    child.once('exit', (code) => fail(`its keeper exited with code ${code}`));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        child.removeAllListeners('exit');
        child.stdout.destroy();
        child.stderr.destroy();
        // Its stdin stays open until this process exits: that end is the keeper's signal.
        (child.stdin as unknown as net.Socket).unref();
        child.unref();
        try {
          resolve((JSON.parse(line) as { connectionString: string }).connectionString);
        } catch {
          fail(`unexpected output ${JSON.stringify(line)}`);
        }
      }
    });
  });
}

let embedded: Promise<string> | undefined;

/** A fresh, migrated database; returns its connection string and how to drop it. */
export async function createDatabase(server: string | undefined) {
  return cloneDatabase(await (server ?? (embedded ??= startKeeper())), 'testkit');
}

// This file run by node with KEEPER_FLAG is the keeper of the embedded Postgres.
if (
  process.argv[2] === KEEPER_FLAG &&
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
)
  await keepPostgres();

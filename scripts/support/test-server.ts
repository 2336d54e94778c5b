// The servers besides the default embedded one, through scripts/test-server.sh: Debian's stock
// PostgreSQL (`stock`, `stock:16`) and the embedded builds of other majors (`embedded:13`).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { root } from './node-process.ts';

const run = promisify(execFile);
const script = path.join(root, 'scripts', 'test-server.sh');

/** `embedded` (the project's own Postgres), `stock[:MAJOR]` or `embedded:MAJOR`. */
export type ServerSpec = string;

export interface TestServer {
  /** Connection string of its `postgres` database (superuser). */
  url: string;
  /** What it is, for reports: `Debian's stock PostgreSQL 15`. */
  describe: string;
  /** Stops it, keeping its data. */
  down(): Promise<void>;
  /** Starts it again after down(), on the same port. */
  up(): Promise<void>;
  /** Stops it and removes its data. */
  stop(): Promise<void>;
}

/** Checks a `--server` value; throws a message naming the valid forms. */
export function parseServerSpec(spec: string): { kind: 'embedded' | 'stock'; major?: number } {
  const m = /^(embedded|stock)(?::(\d+))?$/.exec(spec);
  if (!m) {
    throw new Error(
      `unknown server ${JSON.stringify(spec)}: use embedded, stock, stock:MAJOR or embedded:MAJOR`,
    );
  }
  return { kind: m[1] as 'embedded' | 'stock', major: m[2] ? Number(m[2]) : undefined };
}

/** Starts a server of `spec` (not the default embedded one: that is startEmbeddedPostgres). */
export async function startTestServer(spec: ServerSpec): Promise<TestServer> {
  const { kind, major } = parseServerSpec(spec);
  const args = ['start', kind, ...(major ? [String(major)] : [])];
  const { stdout } = await run('bash', [script, ...args], { maxBuffer: 16 * 1024 * 1024 });
  const value = (name: string) => {
    const v = new RegExp(`^export ${name}=(.*)$`, 'm').exec(stdout)?.[1];
    if (!v) throw new Error(`scripts/test-server.sh ${args.join(' ')} printed no ${name}`);
    return v;
  };
  const url = value('DATABASE_URL');
  const handle = value('TEST_SERVER');
  return {
    url,
    describe:
      kind === 'stock'
        ? `Debian's stock PostgreSQL ${major ?? 15} (its postgresql.conf: JIT on)`
        : `embedded PostgreSQL ${major}`,
    down: async () => void (await run('bash', [script, 'down', handle])),
    up: async () => void (await run('bash', [script, 'up', handle])),
    stop: async () => void (await run('bash', [script, 'stop', handle])),
  };
}

import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Root of the repository: workflows/, sql/ and .data/ are resolved against it. */
export const projectRoot = path.resolve(import.meta.dirname, '..', '..');

const intFromEnv = (def: number, min: number) => z.coerce.number().int().min(min).default(def);

// Each field's `.meta()` is its documentation: `description` is the meaning, `defaultText` the default
// where the value itself would not say it; `npm run config-doc` writes the README's table from them.
export const configSchema = z.object({
  DATABASE_URL: z.string().min(1).optional().meta({
    description:
      'Postgres connection string; migrations are applied at start-up. Unset: an embedded Postgres is started with data in DATA_DIR.',
    defaultText: 'unset: embedded Postgres',
  }),
  EXECUTOR: z.enum(['threadpool', 'worker']).default('threadpool').meta({
    description:
      '`threadpool` runs processes in the API; `worker` only enqueues (see Worker mode).',
  }),
  PORT: intFromEnv(8080, 0).meta({ description: 'HTTP port of the API.' }),
  PUBLIC_URL: z.url().optional().meta({
    description:
      'The address clients reach the API at, for the callback URLs that callback steps hand out (e.g. `https://orchestrator.example.net`).',
    defaultText:
      'the address the API listens on; workers: the address an API recorded in the database at its start',
  }),
  HOST: z.string().min(1).default('127.0.0.1').meta({ description: 'Address the API binds to.' }),
  STEP_THREADS: intFromEnv(os.availableParallelism(), 1).meta({
    description:
      'Threads in the step pool (of the API in threadpool mode, of each worker process in worker mode). Formerly `MAX_WORKERS`, still read (with a warning) when STEP_THREADS is unset.',
    defaultText: 'number of cores',
  }),
  STEPS_PER_THREAD: intFromEnv(16, 1).meta({
    description:
      'Steps one step-pool thread runs at once: steps waiting on I/O share a thread. New steps go only to threads whose event loop answers, so a CPU-bound step delays only the steps already running beside it (see Step isolation).',
  }),
  STEP_TIME_LIMIT_SECONDS: intFromEnv(3600, 1).meta({
    description:
      "Seconds a step's body may run unless the step declares its own `timeLimitSeconds`. Past it the step's `signal` fires; a step still running 5 s later has its thread terminated. Either way it fails with `StepTimeout`.",
  }),
  STEP_CRASH_LIMIT: intFromEnv(3, 1).meta({
    description:
      "Times a step may crash its step thread, running alone on it (out of memory, `process.exit`, an uncaught error), before its process fails with `StepCrashed` and the crash's reason. Steps that only shared a crashed thread run again, not counted.",
  }),
  STEP_THREAD_MEMORY_MB: intFromEnv(512, 16).meta({
    description:
      'A step thread whose heap (used, plus Buffers and other external memory) exceeds this after a step takes no new steps and is replaced once its steps end, so memory a step kept is given back.',
  }),
  STEP_THREAD_MAX_HEAP_MB: z.coerce.number().int().min(16).optional().meta({
    description:
      'Largest JavaScript heap of a step thread (its `maxOldGenerationSizeMb`): a step that needs more crashes its thread (`ERR_WORKER_OUT_OF_MEMORY`); Node.js enforces it best-effort (see Step isolation).',
    defaultText: "Node.js's own limit",
  }),
  LEASE_SECONDS: intFromEnv(30, 1).meta({
    description:
      "Seconds a runner's lease on a process lasts without a heartbeat; crash recovery takes at most this long.",
  }),
  DATA_DIR: z.string().min(1).default(path.join(projectRoot, '.data')).meta({
    description: 'Folder of the embedded Postgres and the instance lock.',
    defaultText: '`.data`',
  }),
  EMBEDDED_PG_PORT: intFromEnv(54329, 1).meta({
    description: 'Port of the embedded Postgres (bound to 127.0.0.1).',
  }),
  WORKFLOWS_DIR: z.string().min(1).default(path.join(projectRoot, 'workflows')).meta({
    description: 'Folder of workflow files loaded at start-up.',
    defaultText: '`workflows`',
  }),
  DB_POOL_SIZE: intFromEnv(10, 2).meta({ description: "Connections in the engine's pool." }),
  DB_READ_POOL_SIZE: intFromEnv(3, 1).meta({
    description:
      'Connections the API keeps apart for its reads (the list, a process, the counts, the engine status), so that operations waiting on a locked row never take them all; `/api/health` has a connection of its own besides.',
  }),
  DB_LOCK_TIMEOUT_MS: intFromEnv(5_000, 0).meta({
    description:
      "Milliseconds a statement of the engine waits for a row or lock another session holds (`lock_timeout`; 0: forever). Past it an API operation answers 503 `database_locked` and writes nothing; a runner's commit is tried again.",
  }),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(0).optional().meta({
    description:
      'Milliseconds the server lets a session of the engine sit idle inside a transaction before it ends the session (`idle_in_transaction_session_timeout`; 0: never): a worker or API cut off mid-transaction holds its locks no longer than this.',
    defaultText: 'LEASE_SECONDS, at least 10 s',
  }),
  DB_KEEPALIVE_SECONDS: z.coerce.number().int().min(0).optional().meta({
    description:
      "Idle seconds before TCP keepalive probes start on the engine's connections, on both sides (pg's `keepAlive`, the server's `tcp_keepalives_*`; 0: off): a peer gone without a FIN is dropped after about twice this.",
    defaultText: 'LEASE_SECONDS / 2',
  }),
  API_READ_TIMEOUT_MS: intFromEnv(30_000, 0).meta({
    description:
      "Milliseconds one statement of the API's reads and health check may run (`statement_timeout` of their connections; 0: no limit); past it 503 `database_busy`.",
  }),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info').meta({
    description: 'Log level: `debug`, `info`, `warn`, `error`; logs are JSON lines on stderr.',
  }),
  TARGET_QUEUES: z
    .string()
    .default('')
    .transform((s) => [
      ...new Set(
        s
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      ),
    ])
    .pipe(z.array(z.string().regex(/^[a-z][a-z0-9_]*$/, 'lower-case letters, digits, _')))
    .meta({
      description:
        'Worker mode: targets that get a queue of their own, comma-separated (target `reconcile` → queue `reconcile`, for new and resumed processes).',
      defaultText: 'none',
    }),
  METRICS_TOKEN: z.string().min(1).optional().meta({
    description: 'When set, `GET /metrics` requires `Authorization: Bearer <METRICS_TOKEN>`.',
  }),
  METRICS_PORT: z.coerce.number().int().min(0).optional().meta({
    description: 'A worker serves its own metrics (steps it ran) on this port at /metrics.',
  }),
  TASK_LOG_RETENTION_DAYS: z.coerce.number().min(0).default(3).meta({
    description: 'Days completed tasks are kept before `task_clean_up_tasks` deletes them.',
  }),
  SHUTDOWN_TIMEOUT_SECONDS: intFromEnv(30, 0).meta({
    description: 'Seconds a stopping worker or API lets running steps finish before aborting them.',
  }),
  MAX_STATE_BYTES: intFromEnv(16 * 1024 * 1024, 1024).meta({
    description:
      'Largest process state, as JSON: a step whose result would exceed it fails, an input that would is refused (400 `state_too_large`).',
    defaultText: '16777216 (16 MiB)',
  }),
  FORM_TIMEOUT_MS: intFromEnv(5_000, 1).meta({
    description:
      "Milliseconds one evaluation of a form may take: its page functions and refinements, which may look things up (an inventory, IPAM). Past it the start, resume or read answers 504 `form_timeout` and writes nothing; a child's start form fails its `subProcesses` step.",
  }),
  API_TOKENS: z.string().min(1).optional().meta({
    description:
      'Static bearer tokens, `name=token` comma-separated (tokens of at least 16 characters); the name is the user recorded.',
  }),
  API_TOKENS_FILE: z.string().min(1).optional().meta({
    description:
      'A file of `name=token` lines (`#` comments), read at start-up; with or instead of API_TOKENS.',
  }),
  OIDC_ISSUER: z.url().optional().meta({
    description:
      "OIDC issuer whose bearer JWTs are accepted (keys from its discovery document's JWKS); the user is `preferred_username` or `sub`.",
  }),
  OIDC_AUDIENCE: z.string().min(1).optional().meta({
    description: 'The audience (`aud`) OIDC tokens must carry.',
    defaultText: 'not checked',
  }),
  OIDC_MAX_TOKEN_LIFETIME_SECONDS: intFromEnv(86_400, 1).meta({
    description:
      'Longest lifetime (`iat` to `exp`, or now to `exp` without `iat`) of an OIDC token accepted; a token without `exp` is refused. A live connection is closed when its token expires.',
  }),
  AUTH: z.enum(['none']).optional().meta({
    description:
      '`none`: listen on a non-loopback HOST without authentication, on purpose (logged as a warning). Without any authentication the API otherwise refuses to.',
  }),
  CORS_ORIGINS: z
    .string()
    .optional()
    .transform((s) =>
      s
        ? s
            .split(',')
            .map((o) => o.trim())
            .filter(Boolean)
        : [],
    )
    .meta({
      description: 'Origins allowed to call the API from a browser, comma-separated.',
      defaultText: 'none (CORS off)',
    }),
  ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((s) =>
      s
        ? s
            .split(',')
            .map((h) => h.trim().toLowerCase())
            .filter(Boolean)
        : [],
    )
    .meta({
      description:
        'Without authentication: further names the API answers to (its `Host` header), comma-separated, `name` (any port) or `name:port`. Always answered: the bound HOST (with HOST `0.0.0.0` or `::`, the address a connection came in on), `localhost`, `127.0.0.1`, `[::1]` and the host of PUBLIC_URL; any other `Host` is refused (421 `host_refused`), so that a page of another site cannot reach the API through DNS rebinding. With authentication configured, not checked.',
      defaultText: 'none',
    }),
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((s): boolean | number | string => {
      const v = s?.trim() ?? '';
      if (v === '' || v === 'false') return false;
      if (v === 'true') return true;
      if (/^\d+$/.test(v)) return Number(v);
      return v;
    })
    .meta({
      description:
        "Express's `trust proxy`: which reverse proxies' `X-Forwarded-For` names the client, as the failed-login limit counts addresses. A hop count (`1`: the one proxy in front), addresses or subnets and the names `loopback`, `linklocal`, `uniquelocal`, comma-separated (the proxies' own addresses), or `true` (every hop: only when nothing reaches the API but through the proxy). Unset: the address of the connection, so behind a proxy every client shares the proxy's.",
      defaultText: 'off',
    }),
});

export type Config = z.infer<typeof configSchema>;

/** Variables renamed: the old name is still read when the new one is unset, with a warning. */
const RENAMED: Readonly<Record<string, keyof Config>> = { MAX_WORKERS: 'STEP_THREADS' };

/** Warnings about the environment (deprecated names) for the entry points to log. */
export function configWarnings(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(RENAMED)
    .filter(([old]) => env[old] !== undefined && env[old] !== '')
    .map(([old, now]) =>
      env[now] !== undefined && env[now] !== ''
        ? `${old} is deprecated and ignored: ${now} is set`
        : `${old} is deprecated: set ${now} instead (read as ${now} for now)`,
    );
}

/** Parses the environment; a bad value fails start-up with the variable named. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable counts as unset (as compose files and shells often leave them).
  const set: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  for (const [old, now] of Object.entries(RENAMED)) {
    if (set[old] !== undefined && set[now] === undefined) set[now] = set[old];
    delete set[old];
  }
  const parsed = configSchema.safeParse(set);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Root of the repository: workflows/, sql/ and .data/ are resolved against it. */
export const projectRoot = path.resolve(import.meta.dirname, '..', '..');

const intFromEnv = (def: number, min: number) => z.coerce.number().int().min(min).default(def);

const configSchema = z.object({
  /** Postgres connection string. Unset: an embedded Postgres is started with data in DATA_DIR. */
  DATABASE_URL: z.string().min(1).optional(),
  /** `threadpool` (default) runs processes in the API; `worker` only enqueues. */
  EXECUTOR: z.enum(['threadpool', 'worker']).default('threadpool'),
  /** HTTP port of the API. Default 8080. */
  PORT: intFromEnv(8080, 0),
  /**
   * The address clients reach the API at, for the callback URLs that callback steps hand out
   * (e.g. `https://orchestrator.example.net`). Default: the address the API listens on; workers
   * default to `http://HOST:PORT`.
   */
  PUBLIC_URL: z.url().optional(),
  /** Address the API binds to. Default 127.0.0.1. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Threads in the step pool. Default: number of cores. */
  MAX_WORKERS: intFromEnv(os.availableParallelism(), 1),
  /**
   * Steps one step-pool thread runs at once: steps waiting on I/O share a thread, a CPU-bound step
   * holds its own. Default 16.
   */
  STEPS_PER_THREAD: intFromEnv(16, 1),
  /** Seconds a runner's lease on a process lasts without a heartbeat. Default 30. */
  LEASE_SECONDS: intFromEnv(30, 1),
  /** Folder of the embedded Postgres and the instance lock. Default `.data`. */
  DATA_DIR: z.string().min(1).default(path.join(projectRoot, '.data')),
  /** Port of the embedded Postgres. Default 54329. */
  EMBEDDED_PG_PORT: intFromEnv(54329, 1),
  /** Folder of workflow files loaded at start-up. Default `workflows`. */
  WORKFLOWS_DIR: z.string().min(1).default(path.join(projectRoot, 'workflows')),
  /** Connections in the engine's pool. Default 10. */
  DB_POOL_SIZE: intFromEnv(10, 2),
  /** Log level: `debug`, `info`, `warn`, `error`. Default `info`. */
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /**
   * Worker mode: targets that get a queue of their own, comma-separated (target `reconcile` →
   * queue `reconcile`, for new and resumed processes). Default none.
   */
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
    .pipe(z.array(z.string().regex(/^[a-z][a-z0-9_]*$/, 'lower-case letters, digits, _'))),
  /** When set, `GET /metrics` requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(1).optional(),
  /** A worker serves its own metrics (steps it ran) on this port at /metrics. Default: none. */
  METRICS_PORT: z.coerce.number().int().min(0).optional(),
  /** Days completed tasks are kept before `task_clean_up_tasks` deletes them. Default 3. */
  TASK_LOG_RETENTION_DAYS: z.coerce.number().min(0).default(3),
  /** Seconds a stopping worker or API lets running steps finish before aborting them. Default 30. */
  SHUTDOWN_TIMEOUT_SECONDS: intFromEnv(30, 0),
});

export type Config = z.infer<typeof configSchema>;

/** Parses the environment; a bad value fails start-up with the variable named. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable counts as unset (as compose files and shells often leave them).
  const set = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = configSchema.safeParse(set);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

// The orchestrator's own database and workflows, for the built-in tasks (workflows/task_*.ts),
// which maintain the orchestrator itself. Step threads are given the connection string when they
// start; a workflow of a team's own should not need this.
import pg from 'pg';
import type { Registry } from './registry.ts';

let connectionString: string | undefined;
let registry: Registry | undefined;
let pool: pg.Pool | undefined;

/** Called where steps run (each step thread) with what the built-in tasks need. */
export function configureSystem(o: { connectionString?: string | undefined; registry?: Registry }) {
  if (o.connectionString !== undefined) connectionString = o.connectionString;
  if (o.registry !== undefined) registry = o.registry;
}

/** A small pool on the orchestrator's database (created on first use in this thread). */
export function systemDatabase(): pg.Pool {
  if (!connectionString) throw new Error('the orchestrator database is not known in this thread');
  if (!pool) {
    pool = new pg.Pool({ connectionString, max: 2, application_name: 'orchestrator-task' });
    pool.on('error', () => {});
  }
  return pool;
}

/** The workflows registered where this step runs. */
export function systemRegistry(): Registry {
  if (!registry) throw new Error('the workflows are not known in this thread');
  return registry;
}

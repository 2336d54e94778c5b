// Entry point of `npm run queues`: prints the inspection views (jobs per queue and state,
// processes per workflow and status, stuck processes, schedules with their next run, resource
// locks held, waiting retries). `--json` prints them as one JSON object.
import { parseArgs } from 'node:util';
import { PgBoss } from 'pg-boss';
import { loadConfig } from '../config/index.ts';
import { embeddedConnectionString } from '../db/embedded.ts';
import { inspect } from '../db/inspection.ts';
import { createPool } from '../db/pool.ts';
import { createLogger } from '../config/logger.ts';

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** A plain text table: header, rule, rows. */
function table(title: string, rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return `${title}\n  (none)\n`;
  const cols = Object.keys(rows[0] ?? {});
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => `  ${vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ')}`;
  return [
    title,
    line(cols),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => cell(r[c])))),
    '',
  ].join('\n');
}

const logger = createLogger('warn', { service: 'queues' });
try {
  const { values } = parseArgs({ options: { json: { type: 'boolean' } } });
  const config = loadConfig();
  const pool = createPool({
    connectionString: config.DATABASE_URL ?? embeddedConnectionString(config.EMBEDDED_PG_PORT),
    max: 3,
    logger,
    applicationName: 'orchestrator-queues',
  });
  try {
    const inspected = await inspect(pool);
    // The next run of each schedule, computed as pg-boss's cron pass reads it (no connection).
    const cron = new PgBoss({ connectionString: 'postgres://unused' });
    const result = {
      ...inspected,
      schedules: inspected.schedules.map((s) => {
        let nextRun: Date | null = null;
        try {
          nextRun = cron.previewSchedule(s.cron, { tz: s.timezone, count: 1 })[0] ?? null;
        } catch {
          // An expression pg-boss cannot read: listed without a next run.
        }
        return { ...s, nextRun };
      }),
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      process.stdout.write(
        [
          table('Jobs per queue and state (orchestrator.queue_overview)', result.queues),
          table(
            'Processes per workflow and status (orchestrator.process_overview)',
            result.processes,
          ),
          table('Stuck processes (orchestrator.stuck_processes)', result.stuck),
          table('Schedules (orchestrator.schedule_overview)', result.schedules),
          table('Resource locks held (orchestrator.resource_lock_overview)', result.locks),
          table('Waiting retries (orchestrator.waiting_retries)', result.retries),
        ].join('\n'),
      );
  } finally {
    await pool.end();
  }
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
}

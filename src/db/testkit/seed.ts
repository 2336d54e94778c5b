// Many ended processes at once, for the list's tests and its search benchmark: one INSERT … SELECT
// over generate_series for the processes and one for their step rows (100,000 in a few seconds),
// never through the API. Ended statuses only (completed, failed, aborted; tasks completed), so no
// executor picks them up and a "retry all tasks" finds none of them.
import type { Queryable } from '../pool.ts';

/** Workflows the seeded processes belong to (registered in workflows/, so their pages open). */
export const SEED_WORKFLOWS = ['noop', 'hello', 'validate_device', 'provision_port', 'flaky'];
export const SEED_CREATORS = ['alice', 'bob', 'carol', 'dave'];

/**
 * Inserts `count` processes numbered from `from` (default 1), each with one step row whose state
 * names a device `sw-<n, 7 digits>`, a port and a site. Every 10th is a task (noop_task); of the
 * workflows every 10th failed (with a traceback), every 20th aborted; every 100th has a note
 * `maintenance window <n>`. Process n started n seconds before `now`.
 */
export async function seedProcesses(
  db: Queryable,
  count: number,
  opts: { from?: number; now?: Date } = {},
): Promise<void> {
  const from = opts.from ?? 1;
  await db.query(
    `WITH n AS (
       SELECT i, CASE WHEN i % 10 = 0 THEN 'completed'
                      WHEN i % 10 = 3 THEN 'failed'
                      WHEN i % 20 = 7 THEN 'aborted'
                      ELSE 'completed' END AS status,
              $3::timestamptz - make_interval(secs => i) AS started
         FROM generate_series($1::int, $1::int + $2::int - 1) i),
     p AS (
       INSERT INTO orchestrator.processes
              (id, workflow_name, status, last_step, step_index, is_task, target, created_by,
               failed_reason, traceback, note, started_at, last_modified_at)
       SELECT gen_random_uuid(),
              CASE WHEN i % 10 = 0 THEN 'noop_task'
                   ELSE ($4::text[])[1 + i % array_length($4::text[], 1)] END,
              status, 'Step 1', CASE WHEN status = 'completed' THEN 1 ELSE 0 END, i % 10 = 0,
              CASE WHEN i % 10 = 0 THEN 'system' ELSE 'modify' END,
              ($5::text[])[1 + i % array_length($5::text[], 1)],
              CASE WHEN status = 'failed' THEN 'Device sw-' || lpad(i::text, 7, '0') || ' did not answer' END,
              CASE WHEN status = 'failed' THEN
                'Error: Device sw-' || lpad(i::text, 7, '0') || E' did not answer\\n' ||
                (SELECT string_agg('    at step' || k || ' (workflows/validate_device.ts:' || (10 + k) || ':5)', E'\\n')
                   FROM generate_series(1, 12) k) END,
              CASE WHEN i % 100 = 0 THEN 'maintenance window ' || i END,
              started, started + interval '1 second'
         FROM n
       RETURNING id, status, started_at, failed_reason,
                 substring(coalesce(failed_reason, '') FROM 'sw-[0-9]+') AS device)
     INSERT INTO orchestrator.process_steps
            (process_id, step_index, name, status, state, error, started_at, completed_at)
     SELECT p.id, 0, 'Step 1', CASE WHEN p.status = 'failed' THEN 'failed' ELSE 'success' END,
            jsonb_build_object('device', 'sw-' || lpad(n.i::text, 7, '0'), 'port', n.i % 48,
                               'site', 'site-' || (n.i % 50)),
            CASE WHEN p.status = 'failed' THEN jsonb_build_object('name', 'Error', 'message', p.failed_reason) END,
            p.started_at, p.started_at + interval '1 second'
       FROM p JOIN n ON n.started = p.started_at`,
    [from, count, opts.now ?? new Date(), SEED_WORKFLOWS, SEED_CREATORS],
  );
  await db.query('ANALYZE orchestrator.processes');
  await db.query('ANALYZE orchestrator.process_steps');
}

-- Inspection views for schedules, resource locks and waiting retries (`npm run queues`, psql).

-- Schedules (pg-boss's rows of the schedule-tick queue); the next run is computed by the CLI.
CREATE VIEW orchestrator.schedule_overview AS
SELECT s.key AS name, s.data->>'workflow' AS workflow, s.cron, s.timezone,
       coalesce((s.data->>'overlap')::boolean, true) AS overlap, s.created_on, s.updated_on,
       (SELECT max(p.started_at) FROM orchestrator.processes p WHERE p.schedule_name = s.key)
         AS last_started
  FROM pgboss.schedule s
 WHERE s.name = 'scheduled_starts';

-- Resource keys held, by whom, and how many processes are queued for each.
CREATE VIEW orchestrator.resource_lock_overview AS
SELECT l.key, l.process_id AS holder, p.workflow_name AS workflow, p.status, l.acquired_at,
       (SELECT count(*) FROM orchestrator.resource_lock_waiters w WHERE w.key = l.key) AS queued
  FROM orchestrator.resource_locks l
  JOIN orchestrator.processes p ON p.id = l.process_id;

-- Processes waiting for an automatic retry, soonest first.
CREATE VIEW orchestrator.waiting_retries AS
SELECT p.id, p.workflow_name AS workflow, p.last_step, p.attempt, p.retry_at,
       p.failed_reason
  FROM orchestrator.processes p
 WHERE p.status = 'waiting';

-- Worker mode: the registry of worker processes, and views for inspection with psql.
-- Runs after pg-boss installed its schema `pgboss` (see src/db/migrate.ts), because the views
-- read pgboss.job.

-- Every worker process registers here at start and heartbeats, so "online" is observed, not guessed.
CREATE TABLE orchestrator.workers (
  id                text        PRIMARY KEY,
  hostname          text        NOT NULL,
  pid               integer     NOT NULL,
  queues            text[]      NOT NULL,
  concurrency       integer     NOT NULL,
  -- How often the worker heartbeats; it counts as online while its last heartbeat is younger
  -- than three of these.
  heartbeat_seconds integer     NOT NULL,
  started_at        timestamptz NOT NULL DEFAULT now(),
  heartbeat_at      timestamptz NOT NULL DEFAULT now(),
  stopped_at        timestamptz
);

CREATE INDEX workers_heartbeat_idx ON orchestrator.workers (heartbeat_at DESC);

-- Jobs per queue and state, with the oldest job's age.
CREATE VIEW orchestrator.queue_overview AS
SELECT j.name AS queue, j.state::text AS state, count(*) AS jobs, min(j.created_on) AS oldest,
       now() - min(j.created_on) AS oldest_age
  FROM pgboss.job j
 GROUP BY j.name, j.state;

-- Processes per workflow and status.
CREATE VIEW orchestrator.process_overview AS
SELECT p.workflow_name AS workflow, p.is_task, p.status, count(*) AS processes,
       min(p.started_at) AS oldest_started, max(p.last_modified_at) AS last_modified
  FROM orchestrator.processes p
 GROUP BY p.workflow_name, p.is_task, p.status;

-- Processes nobody is working on: a lease that expired (its runner died), or created/resumed for
-- more than 10 seconds with no job waiting or running. The sweeper re-queues them; a row that stays
-- here means no sweeper or no worker is running.
CREATE VIEW orchestrator.stuck_processes AS
SELECT p.id, p.workflow_name AS workflow, p.status, p.last_step, p.lease_owner, p.lease_expires_at,
       p.last_modified_at,
       CASE WHEN p.status = 'running' THEN 'lease expired' ELSE 'no job queued' END AS reason
  FROM orchestrator.processes p
 WHERE (p.status = 'running' AND p.lease_expires_at < now())
    OR (p.status IN ('created', 'resumed')
        AND p.last_modified_at < now() - interval '10 seconds'
        AND NOT EXISTS (SELECT 1 FROM pgboss.job j
                         WHERE j.data->>'processId' = p.id::text
                           AND j.state IN ('created', 'retry', 'active')));

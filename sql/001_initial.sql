-- The orchestrator's own tables. Append-only: later changes go into new numbered files.
CREATE SCHEMA IF NOT EXISTS orchestrator;

CREATE TABLE orchestrator.processes (
  id               uuid PRIMARY KEY,
  workflow_name    text        NOT NULL,
  status           text        NOT NULL,
  last_step        text,
  -- Index of the next step to run (for suspended/failed: the step that suspended or failed).
  step_index       integer     NOT NULL DEFAULT 0,
  -- Attempt number of the step at step_index; 1 on first try, +1 per committed failure.
  attempt          integer     NOT NULL DEFAULT 1,
  is_task          boolean     NOT NULL DEFAULT false,
  target           text        NOT NULL,
  assignee         text,
  created_by       text,
  failed_reason    text,
  traceback        text,
  note             text,
  started_at       timestamptz NOT NULL DEFAULT now(),
  last_modified_at timestamptz NOT NULL DEFAULT now(),
  lease_owner      text,
  lease_token      uuid,
  lease_expires_at timestamptz,
  CONSTRAINT processes_status_check CHECK (status IN (
    'created', 'running', 'suspended', 'waiting', 'awaiting_callback', 'resumed',
    'completed', 'aborted', 'failed', 'api_unavailable', 'inconsistent_data'))
);

CREATE INDEX processes_status_idx ON orchestrator.processes (status, is_task);
CREATE INDEX processes_workflow_idx ON orchestrator.processes (workflow_name, started_at DESC);
CREATE INDEX processes_started_idx ON orchestrator.processes (started_at DESC);
-- The sweeper's look-ups: expired leases and processes nobody picked up.
CREATE INDEX processes_pickup_idx ON orchestrator.processes (last_modified_at)
  WHERE status IN ('created', 'resumed', 'running');

CREATE TABLE orchestrator.process_steps (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  process_id   uuid        NOT NULL REFERENCES orchestrator.processes (id) ON DELETE CASCADE,
  step_index   integer     NOT NULL,
  name         text        NOT NULL,
  status       text        NOT NULL,
  -- Full state snapshot after this step (for failed rows: the state the step was given).
  state        jsonb       NOT NULL,
  error        jsonb,
  started_at   timestamptz NOT NULL,
  completed_at timestamptz NOT NULL DEFAULT now(),
  retries      integer     NOT NULL DEFAULT 0,
  created_by   text,
  CONSTRAINT process_steps_status_check CHECK (status IN (
    'success', 'skipped', 'suspend', 'waiting', 'awaiting_callback', 'failed', 'abort', 'complete'))
);

CREATE INDEX process_steps_process_idx ON orchestrator.process_steps (process_id, id);
-- Exactly-once commits, enforced by the database: a step index is cleared at most once.
CREATE UNIQUE INDEX process_steps_cleared_once
  ON orchestrator.process_steps (process_id, step_index)
  WHERE status IN ('success', 'skipped', 'complete');

CREATE TABLE orchestrator.input_states (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  process_id uuid        NOT NULL REFERENCES orchestrator.processes (id) ON DELETE CASCADE,
  input      jsonb       NOT NULL,
  input_type text        NOT NULL CHECK (input_type IN ('initial_state', 'user_input')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX input_states_process_idx ON orchestrator.input_states (process_id, id);

CREATE TABLE orchestrator.engine_settings (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  global_lock boolean NOT NULL DEFAULT false
);

INSERT INTO orchestrator.engine_settings (id) VALUES (true);

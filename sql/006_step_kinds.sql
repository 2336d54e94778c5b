-- Step kinds beyond plain and input steps: automatic retries (`waiting`), callbacks
-- (`awaiting_callback`) and step groups.

-- When a `waiting` process (a retry step failed, attempts left) is due to run again. Claimable from
-- then on, like `resumed`. Indexed only while waiting: a step commit leaves both the column (NULL)
-- and the status of a running process alone, so it stays a HOT update.
ALTER TABLE orchestrator.processes ADD COLUMN retry_at timestamptz;
CREATE INDEX processes_retry_idx ON orchestrator.processes (retry_at) WHERE status = 'waiting';

-- The group a step row's step belongs to (`stepGroup`), NULL outside any group.
ALTER TABLE orchestrator.process_steps ADD COLUMN step_group text;

-- Callbacks handed out by callback steps. The token itself is never stored: only its SHA-256.
-- A process has at most one `pending` row that counts (its latest); a newer callback of the same
-- process (the step ran again after a resume) cancels the older ones in the statement that writes
-- it. Rows stay after use, so that a second POST with a used token is told 409, not 404.
CREATE TABLE orchestrator.callbacks (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  process_id  uuid        NOT NULL REFERENCES orchestrator.processes (id) ON DELETE CASCADE,
  step_index  integer     NOT NULL,
  token_hash  bytea       NOT NULL,
  status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'expired', 'cancelled')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- The callback times out then (the process fails with 'callback timed out'); NULL: never.
  expires_at  timestamptz,
  resolved_at timestamptz,
  -- Interim progress posted to …/callback/:token/progress.
  progress    jsonb,
  progress_at timestamptz
);

CREATE INDEX callbacks_process_idx ON orchestrator.callbacks (process_id, id);
-- The timekeeper's look-up of callbacks past their time.
CREATE INDEX callbacks_expiry_idx ON orchestrator.callbacks (expires_at)
  WHERE status = 'pending' AND expires_at IS NOT NULL;

-- Operating it every day: scheduled starts and per-resource locks.

-- The schedule a process was started by (NULL: started by a user), for `overlap: false`. Never
-- changes after the insert, so indexing it costs step commits nothing.
ALTER TABLE orchestrator.processes ADD COLUMN schedule_name text;
CREATE INDEX processes_schedule_idx ON orchestrator.processes (schedule_name, status)
  WHERE schedule_name IS NOT NULL;

-- Default schedules (of the built-in tasks) installed once: one deleted through the API is not
-- put back at the next start.
CREATE TABLE orchestrator.schedule_defaults (
  name         text PRIMARY KEY,
  installed_at timestamptz NOT NULL DEFAULT now()
);

-- Per-resource locks (`workflow({ lockKeys })`): the keys a process needs, the key's holder, and
-- processes queued for keys (`lockMode: 'queue'`). A key has one holder at most (primary key); a
-- process holds all its keys or none.
ALTER TABLE orchestrator.processes ADD COLUMN lock_keys text[];

CREATE TABLE orchestrator.resource_locks (
  key         text PRIMARY KEY,
  process_id  uuid        NOT NULL REFERENCES orchestrator.processes (id) ON DELETE CASCADE,
  acquired_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX resource_locks_process_idx ON orchestrator.resource_locks (process_id);

CREATE TABLE orchestrator.resource_lock_waiters (
  process_id uuid        NOT NULL REFERENCES orchestrator.processes (id) ON DELETE CASCADE,
  key        text        NOT NULL,
  since      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (process_id, key)
);
CREATE INDEX resource_lock_waiters_key_idx ON orchestrator.resource_lock_waiters (key, since);

-- Gives the keys of `holder` to the processes queued for them, oldest first, each all its keys or
-- none; a process given its keys leaves the queue (and is picked up by the next sweep).
CREATE FUNCTION orchestrator.grant_locks(released text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  w record;
  got integer;
BEGIN
  FOR w IN
    SELECT q.process_id, array_agg(q.key) AS keys
      FROM orchestrator.resource_lock_waiters q
     WHERE q.process_id IN (SELECT process_id FROM orchestrator.resource_lock_waiters
                             WHERE key = ANY(released))
     GROUP BY q.process_id ORDER BY min(q.since)
  LOOP
    INSERT INTO orchestrator.resource_locks (key, process_id)
    SELECT k, w.process_id FROM unnest(w.keys) k
    ON CONFLICT (key) DO NOTHING;
    GET DIAGNOSTICS got = ROW_COUNT;
    IF got = cardinality(w.keys) THEN
      DELETE FROM orchestrator.resource_lock_waiters WHERE process_id = w.process_id;
      UPDATE orchestrator.processes SET last_modified_at = now() - interval '1 hour'
       WHERE id = w.process_id;
    ELSE
      -- Not all free: none taken.
      DELETE FROM orchestrator.resource_locks
       WHERE process_id = w.process_id AND key = ANY(w.keys)
         AND acquired_at = now();
    END IF;
  END LOOP;
END $$;

-- Keys are released when their holder completes or is aborted (not when it fails: like an
-- out-of-sync resource, it stays locked until the process ends).
CREATE FUNCTION orchestrator.release_locks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  released text[];
BEGIN
  WITH d AS (DELETE FROM orchestrator.resource_locks WHERE process_id = NEW.id RETURNING key)
  SELECT array_agg(key) INTO released FROM d;
  IF released IS NOT NULL THEN
    PERFORM orchestrator.grant_locks(released);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER processes_release_locks AFTER UPDATE OF status ON orchestrator.processes
  FOR EACH ROW
  WHEN (NEW.lock_keys IS NOT NULL AND NEW.status IN ('completed', 'aborted')
        AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION orchestrator.release_locks();

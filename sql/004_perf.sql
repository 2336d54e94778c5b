-- Performance: step commits as HOT updates, and exact status counts without scanning.

-- Every step commit moves last_modified_at and lease_expires_at. An index on either turns each
-- commit into a non-HOT update that inserts into every index of the table; without one the
-- commit rewrites the row in place on its page. The sweeper finds its candidates through
-- processes_status_idx (few rows are created/resumed/running at any time) and filters the times.
DROP INDEX orchestrator.processes_pickup_idx;
-- Room on each page for the new row versions of HOT updates.
ALTER TABLE orchestrator.processes SET (fillfactor = 80);

-- Exact counts per status, kept by triggers on every insert, status change and delete. Each
-- backend writes its own stripe of rows (backend pid mod 16), so concurrent commits rarely queue
-- on one counter row; readers sum the stripes (at most 11 statuses x 2 x 16 rows).
CREATE TABLE orchestrator.status_counts (
  status  text    NOT NULL,
  is_task boolean NOT NULL,
  stripe  integer NOT NULL,
  n       bigint  NOT NULL,
  PRIMARY KEY (status, is_task, stripe)
);

INSERT INTO orchestrator.status_counts (status, is_task, stripe, n)
SELECT status, is_task, 0, count(*) FROM orchestrator.processes GROUP BY status, is_task;

-- Inserts and deletes are counted per statement from their transition tables (a bulk insert of a
-- million rows updates a few counter rows once); status changes per row, only when the status
-- changed (a step commit that keeps a process running touches no counter). Counter rows are
-- always locked in one order (status, is_task), so two transactions never wait in a cycle.
-- One function for both: the trigger names its transition table `changed`; inserts count up,
-- deletes down.
CREATE FUNCTION orchestrator.count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO orchestrator.status_counts AS c (status, is_task, stripe, n)
  SELECT status, is_task, pg_backend_pid() % 16,
         CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END
    FROM changed
   GROUP BY status, is_task ORDER BY status, is_task
  ON CONFLICT (status, is_task, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
  RETURN NULL;
END $$;

CREATE FUNCTION orchestrator.count_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO orchestrator.status_counts AS c (status, is_task, stripe, n)
  SELECT d.status, d.is_task, pg_backend_pid() % 16, d.delta
    FROM (VALUES (OLD.status, OLD.is_task, -1), (NEW.status, NEW.is_task, 1)) d (status, is_task, delta)
   ORDER BY d.status, d.is_task
  ON CONFLICT (status, is_task, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
  RETURN NULL;
END $$;

CREATE TRIGGER processes_count_insert AFTER INSERT ON orchestrator.processes
  REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.count_rows();
CREATE TRIGGER processes_count_delete AFTER DELETE ON orchestrator.processes
  REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.count_rows();
CREATE TRIGGER processes_count_update AFTER UPDATE OF status, is_task ON orchestrator.processes
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.is_task IS DISTINCT FROM NEW.is_task)
  EXECUTE FUNCTION orchestrator.count_status_change();

CREATE FUNCTION orchestrator.count_status_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM orchestrator.status_counts;
  RETURN NULL;
END $$;

CREATE TRIGGER processes_count_truncate AFTER TRUNCATE ON orchestrator.processes
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.count_status_truncate();

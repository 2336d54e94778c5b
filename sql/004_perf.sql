-- Performance: step commits as HOT updates, and exact status counts without scanning.

-- Every step commit moves last_modified_at and lease_expires_at. An index on either turns each
-- commit into a non-HOT update that inserts into every index of the table; without one the
-- commit rewrites the row in place on its page. The sweeper finds its candidates through
-- processes_status_idx (few rows are created/resumed/running at any time) and filters the times.
DROP INDEX orchestrator.processes_pickup_idx;
-- Room on each page for the new row versions of HOT updates.
ALTER TABLE orchestrator.processes SET (fillfactor = 80);

-- Exact counts per status, kept by triggers on every insert, status change and delete. Each
-- backend writes its own stripe of rows (backend pid mod 16), so concurrent commits do not queue
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

CREATE FUNCTION orchestrator.count_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s integer := pg_backend_pid() % 16;
BEGIN
  -- Rows are locked in one order (status, is_task) so two transactions never wait on each other
  -- in a cycle.
  IF TG_OP = 'INSERT' THEN
    INSERT INTO orchestrator.status_counts AS c (status, is_task, stripe, n)
    VALUES (NEW.status, NEW.is_task, s, 1)
    ON CONFLICT (status, is_task, stripe) DO UPDATE SET n = c.n + 1;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO orchestrator.status_counts AS c (status, is_task, stripe, n)
    VALUES (OLD.status, OLD.is_task, s, -1)
    ON CONFLICT (status, is_task, stripe) DO UPDATE SET n = c.n - 1;
  ELSE
    INSERT INTO orchestrator.status_counts AS c (status, is_task, stripe, n)
    SELECT d.status, d.is_task, s, d.delta
      FROM (VALUES (OLD.status, OLD.is_task, -1), (NEW.status, NEW.is_task, 1)) d (status, is_task, delta)
     ORDER BY d.status, d.is_task
    ON CONFLICT (status, is_task, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER processes_count_insert AFTER INSERT ON orchestrator.processes
  FOR EACH ROW EXECUTE FUNCTION orchestrator.count_status();
CREATE TRIGGER processes_count_delete AFTER DELETE ON orchestrator.processes
  FOR EACH ROW EXECUTE FUNCTION orchestrator.count_status();
CREATE TRIGGER processes_count_update AFTER UPDATE OF status, is_task ON orchestrator.processes
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.is_task IS DISTINCT FROM NEW.is_task)
  EXECUTE FUNCTION orchestrator.count_status();

CREATE FUNCTION orchestrator.count_status_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM orchestrator.status_counts;
  RETURN NULL;
END $$;

CREATE TRIGGER processes_count_truncate AFTER TRUNCATE ON orchestrator.processes
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.count_status_truncate();

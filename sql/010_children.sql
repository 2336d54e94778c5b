-- Child processes (subProcesses): a parent waits (status waiting, no retry time) at its step
-- until every child it started there has ended; the transaction that ends the last one resumes
-- it. Never changes after the insert, so indexing it costs step commits nothing.
ALTER TABLE orchestrator.processes
  ADD COLUMN parent_id uuid REFERENCES orchestrator.processes (id) ON DELETE SET NULL,
  ADD COLUMN parent_step integer;
CREATE INDEX processes_parent_idx ON orchestrator.processes (parent_id, parent_step)
  WHERE parent_id IS NOT NULL;

-- A child completed or was aborted: when none of its siblings is still going, its parent
-- continues (resumed; its runner collects the children's outcomes). The parent's row is locked
-- first, so that of two last children ending at once the later one sees the other's end.
CREATE FUNCTION orchestrator.child_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM orchestrator.processes WHERE id = NEW.parent_id FOR UPDATE;
  IF NOT EXISTS (
    SELECT 1 FROM orchestrator.processes
     WHERE parent_id = NEW.parent_id AND parent_step = NEW.parent_step
       AND status NOT IN ('completed', 'aborted')) THEN
    UPDATE orchestrator.processes
       SET status = 'resumed', last_modified_at = now(), version = version + 1
     WHERE id = NEW.parent_id AND status = 'waiting' AND retry_at IS NULL
       AND step_index = NEW.parent_step;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER processes_child_ended AFTER UPDATE OF status ON orchestrator.processes
  FOR EACH ROW
  WHEN (NEW.parent_id IS NOT NULL AND NEW.status IN ('completed', 'aborted')
        AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION orchestrator.child_ended();

-- Fan-in without a queue on the parent's row. 010's trigger locked the parent's row in every
-- child's final commit and held it through that commit's WAL flush, so the children of one parent
-- ended one flush at a time: in the fan-out bench (one task, 2,000 noop children, worker mode),
-- that lock was waited on 8 ms per child end, 16 s of Postgres time in a 13.5 s run. And its look
-- for a sibling still going read every sibling that had ended before it (through
-- processes_parent_idx, in insertion order, the order they end): quadratic in the children.
--
-- Now a child's end is not its parent's last when a sibling still going exists that no other
-- transaction is changing right now: that sibling is locked FOR SHARE until this commit (SKIP
-- LOCKED: a row being changed is passed over, never waited for), so its own end, which must lock
-- its row, waits for this commit and then sees this child ended. Only when no such sibling is
-- left (the last few children, or a parent aborting them all in one statement) does a child take
-- the parent's lock and look, as before. Siblings still going are found through an index of their
-- own: status is already indexed (processes_status_idx), so step commits that keep a process
-- running stay HOT updates.
CREATE INDEX processes_children_going_idx ON orchestrator.processes (parent_id, parent_step)
  WHERE parent_id IS NOT NULL AND status NOT IN ('completed', 'aborted');

CREATE OR REPLACE FUNCTION orchestrator.child_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM orchestrator.processes
   WHERE parent_id = NEW.parent_id AND parent_step = NEW.parent_step
     AND status NOT IN ('completed', 'aborted')
   LIMIT 1 FOR SHARE SKIP LOCKED;
  IF FOUND THEN
    RETURN NULL;
  END IF;
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

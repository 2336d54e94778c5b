-- Live events: every change a watcher cares about sends pg_notify('orchestrator_events', …) from a
-- trigger, so it is part of the transaction that made it: a rolled-back step is never announced,
-- and notifications reach listeners in commit order. Payloads carry ids, statuses, names (cut to
-- 200 characters) and timestamps only, never state: at most ~1 kB, far below NOTIFY's 8000 bytes.

-- A committed or updated step row (also the `suspend`, `abort` and repeated `failed` rows).
CREATE FUNCTION orchestrator.notify_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orchestrator_events', json_build_object(
    'type', 'step',
    'id', NEW.id,
    'processId', NEW.process_id,
    'index', NEW.step_index,
    'name', left(NEW.name, 200),
    'status', NEW.status,
    'retries', NEW.retries,
    'startedAt', NEW.started_at,
    'completedAt', NEW.completed_at)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER process_steps_notify
  AFTER INSERT OR UPDATE ON orchestrator.process_steps
  FOR EACH ROW EXECUTE FUNCTION orchestrator.notify_step();

-- A new process, or a change of its status or position. Deferred to commit so that, within one
-- transaction, the step is announced before the status it led to (a client sees the last step
-- of a process before it sees the process `completed`). Heartbeats (lease_expires_at only) stay silent.
CREATE FUNCTION orchestrator.notify_process() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orchestrator_events', json_build_object(
    'type', 'process',
    'id', NEW.id,
    'workflowName', left(NEW.workflow_name, 200),
    'status', NEW.status,
    'lastStep', left(NEW.last_step, 200),
    'stepIndex', NEW.step_index,
    'isTask', NEW.is_task,
    'lastModifiedAt', NEW.last_modified_at)::text);
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER processes_notify_insert
  AFTER INSERT ON orchestrator.processes
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION orchestrator.notify_process();

CREATE CONSTRAINT TRIGGER processes_notify_update
  AFTER UPDATE ON orchestrator.processes
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.step_index IS DISTINCT FROM NEW.step_index
        OR OLD.last_step IS DISTINCT FROM NEW.last_step
        OR OLD.last_modified_at IS DISTINCT FROM NEW.last_modified_at)
  EXECUTE FUNCTION orchestrator.notify_process();

-- The global lock was set or cleared.
CREATE FUNCTION orchestrator.notify_engine() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orchestrator_events',
    json_build_object('type', 'engine', 'globalLock', NEW.global_lock)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER engine_settings_notify
  AFTER UPDATE ON orchestrator.engine_settings
  FOR EACH ROW WHEN (OLD.global_lock IS DISTINCT FROM NEW.global_lock)
  EXECUTE FUNCTION orchestrator.notify_engine();

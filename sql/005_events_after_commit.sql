-- Live events leave the commit path (see src/db/events.ts). The triggers of 003 sent NOTIFY inside
-- every step transaction; Postgres holds one cluster-wide lock from a notifying commit's
-- pre-commit until its WAL is flushed, so notifying commits could not overlap: the step-shaped
-- commit ran 2.9× faster without them, the engine 1.3×. The statements that change a process now
-- return the event they caused and the engine publishes it after the commit, on a non-durable
-- connection of its own, many events to one NOTIFY.
DROP TRIGGER process_steps_notify ON orchestrator.process_steps;
DROP TRIGGER processes_notify_insert ON orchestrator.processes;
DROP TRIGGER processes_notify_update ON orchestrator.processes;
DROP TRIGGER engine_settings_notify ON orchestrator.engine_settings;
DROP FUNCTION orchestrator.notify_step();
DROP FUNCTION orchestrator.notify_process();
DROP FUNCTION orchestrator.notify_engine();

-- Grows with every change of a process that is announced. Events of one process may reach a relay
-- from two instances (the API's `resumed`, the worker's `running`) in either order; the relay
-- drops one older than what it already sent. Not indexed: step commits stay HOT updates.
ALTER TABLE orchestrator.processes ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- States are stored with every step row; lz4 compresses and decompresses them several times
-- faster than the default pglz (a 1 MB state is TOASTed on every step). Servers built without lz4
-- keep pglz, and so does PostgreSQL 13, which has no column compression setting (the statements
-- are dynamic so that its syntax error is caught here too).
DO $$
BEGIN
  EXECUTE 'ALTER TABLE orchestrator.process_steps ALTER COLUMN state SET COMPRESSION lz4';
  EXECUTE 'ALTER TABLE orchestrator.input_states ALTER COLUMN input SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
  RAISE NOTICE 'lz4 is not available on this server: states keep the default compression';
END $$;

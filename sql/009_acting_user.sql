-- Who the next steps of a process are done for: set by a resume, a retry or a callback (the user
-- who caused them), recorded as created_by on the step rows the runner writes after it. NULL:
-- the process's creator.
ALTER TABLE orchestrator.processes ADD COLUMN acting_user text;

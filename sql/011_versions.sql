-- The version of its workflow a process started on (`workflow({ version })`), to name both when
-- the workflow changed under it.
ALTER TABLE orchestrator.processes ADD COLUMN workflow_version text;

-- Processes waiting at an input step for a role (`GET /api/processes?assignee=…`): only the few
-- suspended ones carry an assignee, so the index holds only them.
CREATE INDEX processes_assignee ON orchestrator.processes (assignee) WHERE assignee IS NOT NULL;

-- The process list's search (GET /api/processes?search=…): one text matched against an id prefix,
-- a workflow, a creator, a note's words and the string values of the current state, each branch
-- through an index so that the planner combines them (BitmapOr) instead of reading every process.
-- Measured on 1,000,000 processes (scripts/search-bench.ts, bench/README.md). An id prefix goes
-- through the primary key as a range; a workflow through processes_workflow_idx.

-- Creators: set once when a process starts, so step commits stay HOT updates.
CREATE INDEX processes_created_by_idx ON orchestrator.processes (created_by)
  WHERE created_by IS NOT NULL;

-- A note's words (the 'simple' configuration: no stemming, no stop words, any language). Notes
-- are few and rarely edited; a process without one is not in the index.
CREATE INDEX processes_note_words_idx ON orchestrator.processes
  USING gin (to_tsvector('simple', note)) WHERE note IS NOT NULL;

-- The string values anywhere in a state (`{"port": {"device": "sw-042"}}` gives ["sw-042"]), as a
-- jsonb array whose elements jsonb_path_ops indexes as 4-byte hashes: a long value costs no more
-- than a short one. Step rows are only inserted, so the index costs one insert per step (into
-- GIN's pending list) and nothing on the processes table's updates.
CREATE FUNCTION orchestrator.state_values(state jsonb) RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  -- A quoted body, not RETURN: PostgreSQL 13 has no SQL-standard function bodies.
  AS $fn$ SELECT jsonb_path_query_array(state, 'strict $.** ? (@.type() == "string")') $fn$;

CREATE INDEX process_steps_values_idx ON orchestrator.process_steps
  USING gin (orchestrator.state_values(state) jsonb_path_ops);

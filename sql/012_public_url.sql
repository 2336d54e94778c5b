-- The address the API answers at (its PUBLIC_URL, else the address it listens on), recorded by
-- each API at start. A worker process without PUBLIC_URL hands out callback URLs on it, rather
-- than on an address of its own guessing.
ALTER TABLE orchestrator.engine_settings ADD COLUMN public_url text;

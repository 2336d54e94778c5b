// The test kit for workflow authors: a real engine on a real Postgres, with the steps running in
// the test's own thread. Works with any test runner (vitest, node:test, …): nothing here imports
// one.
//
//   const t = await createTestEngine({ workflows: [hello] });
//   const p = await t.run('hello', { name: 'Ada' });   // returns once the process stops moving
//   expect(p.status).toBe('suspended');
//   await t.close();
//
// What runs is the engine's own: createEngine, the threadpool executor with its runner (claims,
// leases, step rows and transitions committed as in production) and the timekeeper; only the
// step pool is replaced by one that calls the step definitions given here, in this thread.
//
// Postgres: `databaseUrl` or DATABASE_URL when set, else an embedded Postgres the kit starts
// (src/testkit/postgres.ts). Each test engine gets a fresh database, dropped by `close`.
//
// The parts: src/testkit/types.ts (the options and calls), engine.ts (createTestEngine),
// step-pool.ts (the steps in the test's thread), postgres.ts (the server and the databases); its
// statements are in src/db/testkit/statements.ts.
export type { StepRow } from './db/processes.ts';
export type { Actor } from './engine/actor.ts';
export { OrchestratorError } from './engine/errors.ts';
export { createTestEngine } from './testkit/engine.ts';
export type { ActAs, TestEngine, TestEngineOptions, TestProcess } from './testkit/types.ts';

// The test kit for workflow authors: a real engine on a real Postgres. Works with any test runner
// (vitest, node:test, …): nothing here imports one.
//
//   const t = await createTestEngine({ workflows: [hello] });
//   const p = await t.run(hello, { name: 'Ada' });   // returns once the process stops moving
//   expect(p.status).toBe('suspended');
//   await t.close();
//
// What runs is the engine's own: createEngine, the threadpool executor with its runner (claims,
// leases, step rows and transitions committed as in production) and the timekeeper. The steps
// run in the test's own thread (a step pool that calls the step definitions given here), or with
// `steps: 'threads'` on the server's own step pool (piscina threads loading `workflowsDir`).
// Processes come back as `GET /api/processes/:id` sends them (its JSON), typed by the workflow.
//
// Postgres: `databaseUrl` or DATABASE_URL when set, else an embedded Postgres the kit starts
// (src/testkit/postgres.ts). Each test engine gets a fresh database, dropped by `close`.
//
// The parts: src/testkit/types.ts (the options and calls), engine.ts (createTestEngine),
// step-pool.ts (the steps in the test's thread), postgres.ts (the server and the databases); its
// statements are in src/db/testkit/statements.ts.
/** A step row as stored (`t.steps` returns them as the API shows them: `TestStep`). */
export type { StepRow } from './db/processes.ts';
export type { Actor } from './engine/actor.ts';
export { OrchestratorError } from './engine/errors.ts';
export { createTestEngine } from './testkit/engine.ts';
export type {
  ActAs,
  InlineStepsOptions,
  StartArgs,
  TestEngine,
  TestEngineOptions,
  TestProcess,
  TestStep,
  ThreadStepsOptions,
} from './testkit/types.ts';

/**
 * The flags every Node.js process of the orchestrator starts with: the npm scripts pass them
 * literally, the tests', bench's and cluster's child processes and the test runner's processes
 * take them from here.
 *
 * `--no-experimental-require-module`: since Node.js 22.12, `require()` of an ES module is on by
 * default. When it races an `import()` of the same module graph, Node.js 22 aborts the whole
 * process with `FATAL ERROR: v8::Module::IsGraphAsync must be used on an instantiated module`
 * (nodejs/node#55782). A test process died of it in CI, while an API started in it opened its step
 * threads. Two places in this project use it, and both have another way when it is off:
 * - piscina loads a step thread's module with `require()` first, which fails on its top-level
 *   await; it then falls back to `import()`;
 * - get-intrinsic (under express) loads async-function, which also ships a CommonJS build.
 */
export const NODE_FLAGS: readonly string[] = ['--no-experimental-require-module'];

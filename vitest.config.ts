import { defineConfig } from 'vitest/config';
import { NODE_FLAGS } from './src/config/node-flags.ts';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    // After each file: fails it when its servers, connections or child processes are left open.
    setupFiles: ['test/support/leaks.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The test processes start as the orchestrator's own do (src/config/node-flags.ts).
    execArgv: [...NODE_FLAGS],
    // Keep the 2-core CI machine responsive: the suites spawn servers and worker processes.
    maxWorkers: 2,
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    // After each file: fails it when its servers, connections or child processes are left open.
    setupFiles: ['test/support/leaks.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Keep the 2-core CI machine responsive: the suites spawn servers and worker processes.
    maxWorkers: 2,
  },
});

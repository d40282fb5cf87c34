import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // two cores: a local AT Protocol network alone wants one of them
    maxWorkers: 2,
    // @NOTE the local AT Protocol network's own teardown race: a dev-env service still querying PostgreSQL while the
    // network shuts down gets a rejection from the pg client that nothing awaits. Only that one is let pass; any other
    // unhandled error still fails the run.
    onUnhandledError: (e) => !(e.message === 'Connection terminated' && /node_modules\/pg\//.test(e.stack ?? '')),
    projects: [
      {
        extends: true,
        test: {
          name: 'unit+integration',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
          pool: 'forks',
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          // each file boots its own PLC + PDS + AppView on PostgreSQL: one at a time
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          pool: 'forks',
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})

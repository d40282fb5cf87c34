import { defineConfig } from 'vitest/config'

/** `npm run test:abuse`: hostile clients against real processes; each bound checked against a baseline of the same run (docs/security.md). */
export default defineConfig({
  test: {
    include: ['test/abuse/**/*.abuse.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
})

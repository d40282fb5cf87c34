import { defineConfig } from 'vitest/config'

/**
 * `npm run test:faults`: the fault-tolerance scenarios in test/faults (real
 * stage processes, kill -9, a Redis of their own, hostile input, load); see
 * docs/faults.md. FAULTS_FULL=1 runs the full sizes.
 *
 * The scenarios that only check correctness (crash, Redis outage, bad
 * input) run side by side: the crash scenario spends most of its time
 * waiting for BullMQ to notice a killed worker's job. The ones that measure
 * latency and memory (agents, soak) run after them, one at a time, so
 * nothing else on the machine distorts their figures.
 */
export default defineConfig({
  test: {
    testTimeout: 600_000,
    hookTimeout: 120_000,
    maxWorkers: 3,
    projects: [
      {
        extends: true,
        test: {
          name: 'faults-correctness',
          include: [
            'test/faults/crash.faults.ts',
            'test/faults/late-batch.faults.ts',
            'test/faults/redis-outage.faults.ts',
            'test/faults/bad-input.faults.ts',
            'test/faults/edge.faults.ts',
          ],
          pool: 'forks',
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'faults-timing',
          include: ['test/faults/agents.faults.ts', 'test/faults/soak.faults.ts'],
          pool: 'forks',
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})

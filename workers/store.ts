/** Runs the store stage alone: `node workers/store.ts` (configuration from the environment and .env). */
import { loadDotEnv } from '../src/env.ts'
import { runStages } from '../src/stages.ts'

loadDotEnv()

runStages(['store']).catch((err) => {
  process.stderr.write(`skysift store: ${(err as Error).message}\n`)
  process.exit(1)
})

/** Runs the refresh stage alone: `node workers/refresh.ts` (configuration from the environment and .env). */
import { loadDotEnv } from '../src/env.ts'
import { runStages } from '../src/stages.ts'

loadDotEnv()

runStages(['refresh']).catch((err) => {
  process.stderr.write(`skysift refresh: ${(err as Error).message}\n`)
  process.exit(1)
})

/** Runs the serve stage alone: `node workers/serve.ts` (configuration from the environment and .env). */
import { loadDotEnv } from '../src/env.ts'
import { runStages } from '../src/stages.ts'

loadDotEnv()

runStages(['serve']).catch((err) => {
  process.stderr.write(`skysift serve: ${(err as Error).message}\n`)
  process.exit(1)
})

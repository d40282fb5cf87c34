/** Runs the score stage alone: `node workers/score.ts` (configuration from the environment and .env). */
import { loadDotEnv } from '../src/env.ts'
import { runStages } from '../src/stages.ts'

loadDotEnv()

runStages(['score']).catch((err) => {
  process.stderr.write(`skysift score: ${(err as Error).message}\n`)
  process.exit(1)
})

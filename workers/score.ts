/** Runs the score stage alone: `node workers/score.ts` (configuration from the environment). */
import { runStages } from '../src/stages.ts'

runStages(['score']).catch((err) => {
  process.stderr.write(`skysift score: ${(err as Error).message}\n`)
  process.exit(1)
})

/** Runs the refresh stage alone: `node workers/refresh.ts` (configuration from the environment). */
import { runStages } from '../src/stages.ts'

runStages(['refresh']).catch((err) => {
  process.stderr.write(`skysift refresh: ${(err as Error).message}\n`)
  process.exit(1)
})

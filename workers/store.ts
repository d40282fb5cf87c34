/** Runs the store stage alone: `node workers/store.ts` (configuration from the environment). */
import { runStages } from '../src/stages.ts'

runStages(['store']).catch((err) => {
  process.stderr.write(`skysift store: ${(err as Error).message}\n`)
  process.exit(1)
})

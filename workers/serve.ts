/** Runs the serve stage alone: `node workers/serve.ts` (configuration from the environment). */
import { runStages } from '../src/stages.ts'

runStages(['serve']).catch((err) => {
  process.stderr.write(`skysift serve: ${(err as Error).message}\n`)
  process.exit(1)
})

/** Runs the ingest stage alone: `node workers/ingest.ts` (configuration from the environment). */
import { runStages } from '../src/stages.ts'

runStages(['ingest']).catch((err) => {
  process.stderr.write(`skysift ingest: ${(err as Error).message}\n`)
  process.exit(1)
})

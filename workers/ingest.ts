/** Runs the ingest stage alone: `node workers/ingest.ts` (configuration from the environment and .env). */
import { loadDotEnv } from '../src/env.ts'
import { runStages } from '../src/stages.ts'

loadDotEnv()

runStages(['ingest']).catch((err) => {
  process.stderr.write(`skysift ingest: ${(err as Error).message}\n`)
  process.exit(1)
})

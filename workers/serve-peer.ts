/**
 * One more serving process on the first one's port (SKYSIFT_SERVE_PROCESSES): forked by the first, with its
 * configuration and port as the one argument (see src/serve/processes.ts).
 */
import type { ServePeerArgs } from '../src/serve/processes.ts'
import { runEdge, runStages } from '../src/stages.ts'

const args = JSON.parse(process.argv[2] ?? '{}') as ServePeerArgs
// @NOTE a peer stops with the process that forked it, even when that one was killed outright
process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
const listen = { port: args.port, reusePort: true }
;(args.role === 'edge' ? runEdge(args.config, { listen }) : runStages(['serve'], args.config, { listen })).catch((err) => {
  process.stderr.write(`skysift serve (process ${args.index}): ${(err as Error).message}\n`)
  process.exit(1)
})

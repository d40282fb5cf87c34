#!/usr/bin/env node
// Entry for `npm start`, `npm run demo` and `npx skysift …`: checks the Node version first (in plain JavaScript,
// so an older Node gets a sentence instead of ERR_UNKNOWN_FILE_EXTENSION), then runs the TypeScript sources.
import { nodeTooOld } from './node-check.js'

const tooOld = nodeTooOld(process.versions.node)
if (tooOld) {
  process.stderr.write(`${tooOld}\n`)
  process.exit(1)
}
const { runCli } = await import('../src/cli.ts')
runCli()

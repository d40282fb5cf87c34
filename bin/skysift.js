#!/usr/bin/env node
// Entry for `npx skysift …` in a checkout: Node >= 22.18 runs the TypeScript sources directly.
import { runCli } from '../src/cli.ts'

runCli()

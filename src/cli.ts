#!/usr/bin/env node
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, readConfig } from './config.ts'
import { AppContext } from './context.ts'
import { writeSyntheticJsonl } from './ingest/synthetic.ts'
import { createLogger } from './logger.ts'
import { runStages } from './stages.ts'

const HELP = `skysift <command> [options]

Commands:
  start                 run everything: ingest, score workers, store writer, refresh, server
  demo [--events N]     generate N synthetic events (default 200000) and run everything on them
  serve | ingest | score | store | refresh
                        run one stage alone (scale out: more "score" processes on any machine)
  generate <file> [--events N] [--seed S]
                        write synthetic Jetstream JSONL (the live network's mix of events)
  help                  this text

Configuration comes from the environment (and a .env file); see README.md.`

function loadDotEnv(): void {
  if (fs.existsSync('.env')) process.loadEnvFile('.env')
}

/** Runs one CLI command. */
export async function main(argv: string[]): Promise<void> {
  loadDotEnv()
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { events: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  const [cmd = 'help', ...rest] = positionals
  if (values.help || cmd === 'help') {
    process.stdout.write(`${HELP}\n`)
    return
  }
  switch (cmd) {
    case 'start': {
      const config = readConfig()
      return runStages(['serve', 'store', 'refresh', 'score', 'ingest'], {}, { childScoreWorkers: config.scoreWorkers })
    }
    case 'serve':
    case 'ingest':
    case 'score':
    case 'store':
    case 'refresh':
      return runStages([cmd])
    case 'demo': {
      const events = Number(values.events ?? 200_000)
      const file = path.resolve('data', 'demo.jsonl')
      fs.mkdirSync(path.dirname(file), { recursive: true })
      process.stderr.write(`writing ${events} synthetic events to ${file}…\n`)
      await writeSyntheticJsonl(file, { count: events, seed: Date.now() % 1_000_000 })
      const config = readConfig()
      // a fresh file each time: forget how far the previous demo got
      const ctx = new AppContext(config, createLogger('warn'))
      ctx.db.sqlite.prepare('DELETE FROM cursors WHERE source = ?').run(`replay:${file}`)
      await ctx.close()
      return runStages(['serve', 'store', 'refresh', 'score', 'ingest'], { source: { kind: 'replay', path: file, pace: 'full' } }, { childScoreWorkers: config.scoreWorkers })
    }
    case 'generate': {
      const file = rest[0]
      if (!file) throw new Error('usage: skysift generate <file> [--events N] [--seed S]')
      await writeSyntheticJsonl(path.resolve(file), { count: Number(values.events ?? 100_000), seed: Number(values.seed ?? 1) })
      return
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd)}\n\n${HELP}`)
  }
}

/** Runs the CLI on this process's arguments; exits 1 with the message on error. */
export function runCli(): void {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`skysift: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`)
    process.exit(1)
  })
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) runCli()

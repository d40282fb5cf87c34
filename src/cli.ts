#!/usr/bin/env node
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, readConfig } from './config.ts'
import { AppContext, VERSION } from './context.ts'
import { agentCommand } from './commands/agent.ts'
import { writeSyntheticJsonl } from './ingest/synthetic.ts'
import { loadDotEnv } from './env.ts'
import { createLogger } from './logger.ts'
import { publishCommand } from './commands/publish.ts'
import { runEdge, runStages } from './stages.ts'
import { forgetCursor } from './store/ingest-state.ts'
import { statusCommand } from './commands/status.ts'

const HELP = `skysift <command> [options]

Commands:
  start                 run everything: ingest, score workers, store writer, refresh, server
  demo [--events N]     generate N synthetic events (default 200000) and run everything on them
  serve | ingest | score | store | refresh
                        run one stage alone (scale out: more "score" processes on any machine)
  edge                  serve feeds from Redis alone, on any machine: what a primary with
                        SKYSIFT_EDGE_PUBLISH=1 publishes there (no SQLite file); other requests
                        go to SKYSIFT_PRIMARY_URL
  status [--json]       what the deployment is doing: ingest cursor and lag, events/s, queues,
                        agents (p50/p99, strikes, disabled), cache, subscribers (reads SQLite and Redis)
  generate <file> [--events N] [--seed S]
                        write synthetic Jetstream JSONL (the live network's mix of events)

Agents:
  agent test <file|package|builtin-id> --replay <jsonl> [--options <json>] [--sandbox] [--json] [--allow-strikes]
                        run an agent on recorded traffic through the server's agent host:
                        posts seen, kept, dropped, score histogram, top 20, cost per post, strikes
                        (exits 1 when the agent struck, as a server would count it; --allow-strikes: exit 0)
  agent new <id>        scaffold <id>.agent.js (ready for the sandbox) and a test for it
  agent list            run-time agents (sandboxed, remote) and their review status
  agent submit <file>   store an uploaded agent for review (on the server's machine)
  agent approve <id> [--note text] | agent reject <id> [--note text]
  agent add-remote <url> [--raw-dids] [--allow-private]
                        register a remote (HTTP) agent; approve it to put it in service

Publishing (log in with SKYSIFT_PUBLISHER_HANDLE / SKYSIFT_PUBLISHER_PASSWORD, an app password, or when asked):
  publish [--dry-run] [--service <url>]
                        create or update each feed's app.bsky.feed.generator record in the
                        publisher's repo (service: SKYSIFT_PUBLISHER_SERVICE, default https://bsky.social)
  unpublish <rkey> [--force] [--dry-run] [--service <url>]
                        delete one feed's record (--force: an rkey not in the feeds file)

  help                  this text
  --version             the version of Skysift

Configuration comes from the environment (and a .env file); see README.md.`

/** Runs one CLI command. */
export async function main(argv: string[]): Promise<void> {
  loadDotEnv()
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      events: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      'allow-strikes': { type: 'boolean' },
      replay: { type: 'string' },
      options: { type: 'string' },
      sandbox: { type: 'boolean' },
      json: { type: 'boolean' },
      note: { type: 'string' },
      'raw-dids': { type: 'boolean' },
      'allow-private': { type: 'boolean' },
      service: { type: 'string' },
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
    },
  })
  const [cmd = 'help', ...rest] = positionals
  if (values.version) {
    process.stdout.write(`skysift ${VERSION}\n`)
    return
  }
  if (values.help || cmd === 'help') {
    process.stdout.write(`${HELP}\n`)
    return
  }
  switch (cmd) {
    case 'start': {
      const config = readConfig()
      return runStages(['serve', 'store', 'refresh', 'score', 'ingest'], {}, { childScoreWorkers: config.scoreWorkers, childRefresh: true })
    }
    case 'serve':
    case 'ingest':
    case 'score':
    case 'store':
    case 'refresh':
      return runStages([cmd])
    case 'edge':
      return runEdge()
    case 'demo': {
      const events = Number(values.events ?? 200_000)
      const file = path.resolve('data', 'demo.jsonl')
      fs.mkdirSync(path.dirname(file), { recursive: true })
      process.stderr.write(`writing ${events} synthetic events to ${file}…\n`)
      await writeSyntheticJsonl(file, { count: events, seed: Date.now() % 1_000_000 })
      const config = readConfig()
      // a fresh file each time: forget how far the previous demo got
      const ctx = await AppContext.create(config, createLogger('warn'))
      forgetCursor(ctx.db.sqlite, `replay:${file}`)
      await ctx.close()
      return runStages(
        ['serve', 'store', 'refresh', 'score', 'ingest'],
        { source: { kind: 'replay', path: file, pace: 'full' } },
        { childScoreWorkers: config.scoreWorkers, childRefresh: true },
      )
    }
    case 'generate': {
      const file = rest[0]
      if (!file) throw new Error('usage: skysift generate <file> [--events N] [--seed S]')
      const count = Number(values.events ?? 100_000)
      if (!Number.isInteger(count) || count < 1) throw new Error('--events must be a whole number above 0')
      await writeSyntheticJsonl(path.resolve(file), { count, seed: Number(values.seed ?? 1) })
      process.stdout.write(`wrote ${count.toLocaleString('en-US')} synthetic Jetstream events to ${file}\n`)
      return
    }
    case 'status': {
      const { text } = await statusCommand(readConfig(), { json: values.json === true })
      process.stdout.write(`${text}\n`)
      return
    }
    case 'agent':
      return agentCommand(rest, values, HELP)
    case 'publish':
    case 'unpublish': {
      const config = readConfig()
      const ctx = await AppContext.create(config, createLogger('warn'))
      await ctx.close()
      return publishCommand(cmd, rest, {
        serviceDid: config.serviceDid,
        publisherDid: config.publisherDid,
        publisherHandle: config.publisherHandle,
        publisherPassword: config.publisherPassword,
        publisherService: config.publisherService,
        feeds: ctx.feeds,
        baseDir: path.dirname(config.feedsFile),
        service: values.service,
        dryRun: values['dry-run'],
        force: values.force,
      })
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

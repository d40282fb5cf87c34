#!/usr/bin/env node
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, readConfig } from './config.ts'
import { AppContext, VERSION } from './context.ts'
import { agentTest, formatReport, scaffoldAgent } from './agent-cli.ts'
import { writeSyntheticJsonl } from './ingest/synthetic.ts'
import { AgentStore } from './score/agent-registry.ts'
import { AgentRecords } from './store/agents.ts'
import { STRIKE_LIMIT } from './score/host.ts'
import { loadDotEnv } from './env.ts'
import { createLogger } from './logger.ts'
import { publishCommand } from './publish.ts'
import { runStages } from './stages.ts'
import { statusCommand } from './ops/status-cli.ts'
import { forgetCursor } from './store/ingest-state.ts'

const HELP = `skysift <command> [options]

Commands:
  start                 run everything: ingest, score workers, store writer, refresh, server
  demo [--events N]     generate N synthetic events (default 200000) and run everything on them
  serve | ingest | score | store | refresh
                        run one stage alone (scale out: more "score" processes on any machine)
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
      return runStages(['serve', 'store', 'refresh', 'score', 'ingest'], { source: { kind: 'replay', path: file, pace: 'full' } }, { childScoreWorkers: config.scoreWorkers, childRefresh: true })
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
      return agentCommand(rest, values)
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

async function agentCommand(args: string[], values: Record<string, string | boolean | undefined>): Promise<void> {
  const [sub, target] = args
  const out = (s: string): void => void process.stdout.write(`${s}\n`)
  if (sub === 'test') {
    if (!target || typeof values.replay !== 'string') throw new Error('usage: skysift agent test <file|package|id> --replay <jsonl> [--options <json>] [--sandbox] [--json] [--allow-strikes]')
    let options: Record<string, unknown> | undefined
    if (typeof values.options === 'string') {
      try {
        options = JSON.parse(values.options)
      } catch {
        throw new Error('--options must be JSON, e.g. \'{"include":["cats"]}\'')
      }
    }
    const report = await agentTest(target, { replay: values.replay, options, sandbox: values.sandbox === true, progress: process.stderr })
    out(values.json ? JSON.stringify(report, null, 2) : formatReport(report))
    if (report.strikes > 0 && !values['allow-strikes']) {
      process.stderr.write(`skysift: the agent struck ${report.strikes} time${report.strikes === 1 ? '' : 's'} (a server disables an agent after ${STRIKE_LIMIT} in 10 minutes); last: ${report.lastError ?? 'unknown'}. --allow-strikes exits 0 anyway\n`)
      process.exitCode = 1
    }
    return
  }
  if (sub === 'new') {
    if (!target) throw new Error('usage: skysift agent new <id>')
    for (const f of scaffoldAgent(target, process.cwd())) out(`wrote ${f}`)
    return
  }
  const config = readConfig()
  const ctx = await AppContext.create(config, createLogger('warn'))
  try {
    const store = new AgentStore(new AgentRecords(ctx.db.sqlite), (id) => ['builtin', 'installed'].includes(ctx.host.kindOf(id) ?? ''))
    const note = typeof values.note === 'string' ? values.note : null
    switch (sub) {
      case 'list': {
        const rows = store.list()
        if (!rows.length) return out('no run-time agents')
        for (const a of rows) out(`${a.id.padEnd(24)} ${a.kind.padEnd(10)} ${a.status.padEnd(9)} v${a.meta.version.padEnd(8)} by ${a.submittedBy}${a.note ? `  (${a.note})` : ''}`)
        return
      }
      case 'submit': {
        if (!target) throw new Error('usage: skysift agent submit <file>')
        const rec = await store.submitSandboxed(fs.readFileSync(target, 'utf8'), 'admin')
        return out(`${rec.id} v${rec.meta.version} stored, pending review (skysift agent approve ${rec.id})`)
      }
      case 'approve':
      case 'reject': {
        if (!target) throw new Error(`usage: skysift agent ${sub} <id>`)
        const rec = store.decide(target, sub === 'approve' ? 'approved' : 'rejected', note)
        return out(`${rec.id}: ${rec.status}; running servers pick this up within seconds`)
      }
      case 'add-remote': {
        if (!target) throw new Error('usage: skysift agent add-remote <url> [--raw-dids] [--allow-private]')
        if (values['allow-private'] && !config.allowPrivateAgents) throw new Error('--allow-private needs SKYSIFT_ALLOW_PRIVATE_AGENTS=true')
        const rec = await store.addRemote(target, { rawDids: values['raw-dids'] === true, allowPrivateNetwork: values['allow-private'] === true }, 'admin')
        return out(`${rec.id} v${rec.meta.version} (${rec.url}) registered, pending review (skysift agent approve ${rec.id})`)
      }
      default:
        throw new Error(`unknown agent command ${JSON.stringify(sub)}\n\n${HELP}`)
    }
  } finally {
    await ctx.close()
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

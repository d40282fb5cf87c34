import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { readConfig } from '../config.ts'
import { AppContext } from '../context.ts'
import { ReplaySource } from '../ingest/replay-source.ts'
import { createLogger, silentLogger } from '../logger.ts'
import { AGENT_ID } from '../score/agent-meta.ts'
import { BUILTIN_AGENTS } from '../score/agents/index.ts'
import { AgentStore, loadInstalledAgents } from '../score/agent-registry.ts'
import { AgentRecords } from '../store/agents.ts'
import { AgentHost, STRIKE_LIMIT, type AnyAgent } from '../score/host.ts'
import { FieldError } from '../util/field-error.ts'
import { loadSandboxedAgent } from '../score/sandbox.ts'
import { agentPostFromEvent } from '../score/score-stage.ts'
import { DROP, type AgentPost, type Score } from '../score/sdk.ts'

export interface AgentTestOptions {
  replay: string
  options?: Record<string, unknown>
  sandbox?: boolean
  /** where progress goes (stderr) */
  progress?: NodeJS.WritableStream & { isTTY?: boolean }
  top?: number
}

export interface AgentTestReport {
  agent: { id: string; version: string; title: string; kind: string }
  events: number
  posts: number
  kept: number
  dropped: number
  noOpinion: number
  histogram: { from: number; to: number; count: number }[]
  top: { uri: string; score: number; text: string }[]
  costUsPerPost: number
  totalMs: number
  strikes: number
  lastError: string | null
}

/**
 * Loads an agent for testing: a built-in id, a sandboxed file, or a module
 * (a file, or an npm package). A path that exists is a file. A file that does
 * not load is named in the error, with the line and column of a syntax error.
 */
export async function loadAgentForTest(target: string, sandbox: boolean): Promise<{ def: AnyAgent; kind: string }> {
  const isFile = fs.existsSync(target) && fs.statSync(target).isFile()
  if (sandbox) {
    if (!isFile) throw new Error(`${target}: no such file (--sandbox runs one JavaScript file)`)
    try {
      return { def: await loadSandboxedAgent(fs.readFileSync(target, 'utf8')), kind: 'sandboxed' }
    } catch (err) {
      const msg = (err as Error).message
      const at = / at line (\d+), column (\d+)$/.exec(msg)
      throw new Error(at ? `${target}:${at[1]}:${at[2]}: ${msg.slice(0, at.index)}` : `${target}: ${msg}`)
    }
  }
  const builtin = BUILTIN_AGENTS.get(target)
  if (builtin && !isFile) return { def: builtin, kind: 'builtin' }
  try {
    const [def] = await loadInstalledAgents([isFile ? path.resolve(target) : target])
    return { def, kind: 'installed' }
  } catch (err) {
    const syntax = isFile ? syntaxErrorOf(target) : null
    if (syntax) throw new Error(syntax)
    throw err
  }
}

/** "file:line:column: SyntaxError: …" when Node cannot parse the file, else null (`node --check` knows where). */
function syntaxErrorOf(file: string): string | null {
  const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 })
  if (r.status === 0 || !r.stderr) return null
  const lines = r.stderr.split('\n')
  const line = /:(\d+)$/.exec(lines[0] ?? '')?.[1]
  const caret = lines[2]?.indexOf('^') ?? -1
  const message = lines.find((l) => /^SyntaxError\b/.test(l))
  if (!message || !line) return null
  return `${file}:${line}${caret >= 0 ? `:${caret + 1}` : ''}: ${message}`
}

const BATCH = 100

/**
 * Runs an agent over recorded traffic through the same host the server
 * uses: the posts of a Jetstream JSONL replay (with likes and reposts
 * counted and deletes honoured), scored as of the last event's time.
 */
export async function agentTest(target: string, o: AgentTestOptions): Promise<AgentTestReport> {
  const { def, kind } = await loadAgentForTest(target, o.sandbox ?? false)
  const host = new AgentHost(new Map([[def.id, def]]), silentLogger, { strikeLimit: Number.MAX_SAFE_INTEGER })
  if (kind !== 'builtin') host.kindOf(def.id)
  let inst
  try {
    inst = host.instance(def.id, o.options ?? {}, '')
  } catch (err) {
    // the host names fields from a mix entry (agents.0.options.x): here they are --options' own
    if (err instanceof FieldError)
      throw new Error(`bad --options: ${err.field.replace(/^\.options\.?/, '') || 'options'}: ${err.message.slice(err.field.length + 2)}`)
    throw err
  }
  const total = fs.statSync(o.replay).size
  const posts = new Map<string, AgentPost>()
  let events = 0
  let lastTime = 0
  const bar = progressBar(o.progress, 'reading')
  const src = new ReplaySource(o.replay)
  let bytes = 0
  await src.run((item) => {
    events++
    if (item.timeMs > lastTime) lastTime = item.timeMs
    if ('payload' in item) bytes += item.payload.length + 1
    else bytes += 200
    if (events % 2000 === 0) bar(Math.min(1, bytes / total))
    if (!('event' in item) || !item.event) return
    const e = item.event
    if (e.t === 'post') posts.set(e.uri, agentPostFromEvent(e))
    else if (e.t === 'delete') posts.delete(e.uri)
    else if (e.t === 'like' || e.t === 'repost') {
      const p = posts.get(e.subject)
      if (p) e.t === 'like' ? p.likeCount++ : p.repostCount++
    } else if (e.t === 'account' && !e.active) {
      for (const [u, p] of posts) if (p.author === e.did) posts.delete(u)
    }
  }, undefined)
  bar(1, true)
  const list = [...posts.values()]
  const scores: Score[] = []
  const scoreBar = progressBar(o.progress, 'scoring')
  const t0 = performance.now()
  const whole = def.needs.includes('candidates')
  for (let i = 0; i < list.length; i += whole ? list.length : BATCH) {
    const chunk = whole ? list : list.slice(i, i + BATCH)
    const out = host.isAsync(inst) ? await host.runAsync(inst, chunk, lastTime) : host.run(inst, chunk, lastTime)
    scores.push(...out)
    scoreBar(Math.min(1, (i + chunk.length) / list.length))
  }
  scoreBar(1, true)
  const totalMs = performance.now() - t0
  const nums: { i: number; v: number }[] = []
  let dropped = 0
  let none = 0
  scores.forEach((v, i) => {
    if (v === DROP) dropped++
    else if (v === null) none++
    else nums.push({ i, v })
  })
  const st = host.stats.get(def.id)
  return {
    agent: { id: def.id, version: def.version, title: def.title, kind },
    events,
    posts: list.length,
    kept: nums.length,
    dropped,
    noOpinion: none,
    histogram: histogram(
      nums.map((n) => n.v),
      10,
    ),
    top: nums
      .sort((a, b) => b.v - a.v || list[b.i].createdAt - list[a.i].createdAt)
      .slice(0, o.top ?? 20)
      .map((n) => ({ uri: list[n.i].uri, score: n.v, text: list[n.i].text })),
    costUsPerPost: list.length ? (totalMs * 1000) / list.length : 0,
    totalMs,
    strikes: st?.strikes ?? 0,
    lastError: st?.lastError ?? null,
  }
}

/** Equal-width buckets between the smallest and largest score. */
export function histogram(values: number[], buckets: number): AgentTestReport['histogram'] {
  if (!values.length) return []
  let min = Infinity
  let max = -Infinity
  for (const v of values) {
    if (v < min) min = v
    if (v > max) max = v
  }
  if (min === max) return [{ from: min, to: max, count: values.length }]
  const w = (max - min) / buckets
  // bounds rounded to 12 significant digits: 0.1 + 0.2 shows as 0.3, not 0.30000000000000004
  const bound = (k: number) => (k === buckets ? max : Number((min + k * w).toPrecision(12)))
  const out = Array.from({ length: buckets }, (_, k) => ({ from: k === 0 ? min : bound(k), to: bound(k + 1), count: 0 }))
  for (const v of values) out[Math.min(buckets - 1, Math.floor((v - min) / w))].count++
  return out
}

function progressBar(out: AgentTestOptions['progress'], label: string) {
  let last = -1
  return (frac: number, done = false) => {
    if (!out) return
    const pct = Math.floor(frac * 100)
    if (pct === last && !done) return
    last = pct
    const width = 30
    const fill = Math.round(frac * width)
    const line = `${label.padEnd(8)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}%`
    if (out.isTTY) out.write(`\r${line}${done ? '\n' : ''}`)
    else if (done || pct % 25 === 0) out.write(`${line}\n`)
  }
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3))

/** The report as people read it. */
export function formatReport(r: AgentTestReport): string {
  const lines: string[] = []
  lines.push(`${r.agent.title} (${r.agent.id} ${r.agent.version}, ${r.agent.kind})`)
  lines.push(`events read      ${r.events}`)
  lines.push(`posts seen       ${r.posts}`)
  lines.push(`kept (scored)    ${r.kept}`)
  lines.push(`dropped          ${r.dropped}`)
  lines.push(`no opinion       ${r.noOpinion}`)
  lines.push(`cost per post    ${r.costUsPerPost.toFixed(1)} µs (${r.totalMs.toFixed(1)} ms in all)`)
  lines.push(`strikes          ${r.strikes}${r.lastError ? ` (last: ${r.lastError})` : ''}`)
  if (r.histogram.length) {
    lines.push('', 'score histogram')
    const peak = Math.max(...r.histogram.map((h) => h.count))
    for (const h of r.histogram)
      lines.push(`  ${fmt(h.from).padStart(9)} … ${fmt(h.to).padEnd(9)} ${'█'.repeat(Math.round((h.count / peak) * 40)).padEnd(40)} ${h.count}`)
  }
  if (r.top.length) {
    lines.push('', `top ${r.top.length}`)
    r.top.forEach((t, i) =>
      lines.push(`  ${String(i + 1).padStart(2)}. ${fmt(t.score).padStart(8)}  ${t.text.replace(/\s+/g, ' ').slice(0, 70)}`, `      ${t.uri}`),
    )
  }
  return lines.join('\n')
}

/** A new agent file (self-contained, ready for the sandbox) and a test for it. */
export function scaffoldAgent(id: string, dir: string): string[] {
  if (!AGENT_ID.test(id)) throw new Error('agent id: 2-41 lower-case letters, digits or dashes')
  const file = path.join(dir, `${id}.agent.js`)
  const test = path.join(dir, `${id}.agent.test.mjs`)
  for (const f of [file, test]) if (fs.existsSync(f)) throw new Error(`${f} exists`)
  fs.writeFileSync(
    file,
    `// A Skysift agent. One self-contained file: no imports, no I/O, no clock (use ctx.now).
// Try it:   npx skysift agent test ${id}.agent.js --sandbox --replay <events.jsonl>
// Submit:   app.skysift.agent.submitAgent, or ask the server's admin (skysift agent submit)
export default {
  id: '${id}',
  version: '0.1.0',
  title: '${id.replace(/-/g, ' ').replace(/^./, (c) => c.toUpperCase())}',
  description: 'Lifts posts that ask a question.',
  api: 1,
  // JSON Schema of the options a reader can set
  options: {
    type: 'object',
    properties: { bonus: { type: 'number', minimum: 0, maximum: 10, default: 1 } },
    additionalProperties: false,
  },
  // cheap conditions the host checks before calling scoreBatch
  prefilter: { langs: ['en'] },
  // post fields this agent reads
  needs: ['text'],
  // one entry per post: a finite number (higher ranks higher), 'drop', or null (no opinion)
  scoreBatch(posts, ctx) {
    return posts.map((p) => (p.text.trim().endsWith('?') ? ctx.options.bonus : 0))
  },
}
`,
  )
  fs.writeFileSync(
    test,
    `// Run: node --test ${id}.agent.test.mjs
import assert from 'node:assert/strict'
import { test } from 'node:test'
import agent from './${id}.agent.js'

const post = (text) => ({ uri: 'at://did:plc:x/app.bsky.feed.post/1', author: 'did:plc:x', createdAt: 0, text, langs: ['en'], tags: [], labels: [], embed: null, quote: null, replyRoot: null, replyParent: null, likeCount: 0, repostCount: 0 })

test('scores one entry per post', () => {
  const out = agent.scoreBatch([post('Is this thing on?'), post('It is.')], { options: { bonus: 2 }, now: 0 })
  assert.deepEqual(out, [2, 0])
})
`,
  )
  return [file, test]
}

/**
 * `skysift agent …`: test an agent on recorded traffic, scaffold one, and review run-time agents (list, submit,
 * approve, reject, add-remote) in the agents table. `help` is the CLI's usage, shown after an unknown subcommand.
 */
export async function agentCommand(args: string[], values: Record<string, string | boolean | undefined>, help: string): Promise<void> {
  const [sub, target] = args
  const out = (s: string): void => void process.stdout.write(`${s}\n`)
  if (sub === 'test') {
    if (!target || typeof values.replay !== 'string')
      throw new Error('usage: skysift agent test <file|package|id> --replay <jsonl> [--options <json>] [--sandbox] [--json] [--allow-strikes]')
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
      process.stderr.write(
        `skysift: the agent struck ${report.strikes} time${report.strikes === 1 ? '' : 's'} (a server disables an agent after ${STRIKE_LIMIT} in 10 minutes); last: ${report.lastError ?? 'unknown'}. --allow-strikes exits 0 anyway\n`,
      )
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
        for (const a of rows)
          out(`${a.id.padEnd(24)} ${a.kind.padEnd(10)} ${a.status.padEnd(9)} v${a.meta.version.padEnd(8)} by ${a.submittedBy}${a.note ? `  (${a.note})` : ''}`)
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
        throw new Error(`unknown agent command ${JSON.stringify(sub)}\n\n${help}`)
    }
  } finally {
    await ctx.close()
  }
}

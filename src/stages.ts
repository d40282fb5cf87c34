import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { readConfig, type Config } from './config.ts'
import { AppContext } from './context.ts'
import { createLogger, type Logger } from './logger.ts'
import { ensureRedis } from './redis-server.ts'
import type { IngestStats } from './contracts/ingest.ts'
import { ingestOf, startProcessReport } from './status/report.ts'
import { startServePeers } from './serve/processes.ts'
import { startEdge } from './edge-runtime.ts'
import { startIngest, startRefresh, startScore, startServe, startStore, stopAll, type Role, type Running } from './runtime.ts'
import { boundHeapGrowth } from './util/heap.ts'

const ENTRY = {
  score: fileURLToPath(new URL('../workers/score.ts', import.meta.url)),
  refresh: fileURLToPath(new URL('../workers/refresh.ts', import.meta.url)),
}

/**
 * A message an ingest process sends its parent over IPC (when it has one): its counters, once when reading starts,
 * then every INGEST_MESSAGE_MS and when a replay has ended (`done`).
 */
export interface IngestMessage {
  type: 'ingest'
  stats: IngestStats
  done: boolean
}

/** How often an ingest child tells its parent its counters. */
const INGEST_MESSAGE_MS = 500

/** Runs stages in this process until SIGTERM/SIGINT, then stops them in order. */
export async function runStages(
  roles: Role[],
  overrides: Partial<Config> = {},
  opts: { childScoreWorkers?: number; childRefresh?: boolean; log?: Logger; listen?: { port: number; reusePort: boolean } } = {},
): Promise<void> {
  boundHeapGrowth()
  const config = readConfig(process.env, overrides)
  const log = opts.log ?? createLogger(config.logLevel)
  let redisChild: ChildProcess | null = null
  const needsRedis = roles.length > 0
  if (needsRedis) redisChild = await ensureRedis(config.redisUrl, log, config.startRedis === 'auto' && roles.includes('serve'))
  const ctx = await AppContext.create(config, log)
  const parts: Running[] = []
  const children: ChildProcess[] = []
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    for (const c of children) c.kill('SIGTERM')
    await stopAll(ctx, parts)
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)))
    redisChild?.kill()
    log.info('stopped')
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  if (roles.includes('serve')) {
    try {
      // SKYSIFT_SERVE_PROCESSES: this process serves, and forks the others onto its port (a peer forks none)
      const peers = opts.listen ? 0 : config.serveProcesses - 1
      const served = await startServe(ctx, opts.listen ? { ...opts.listen, peer: true } : peers > 0 ? { reusePort: true } : {})
      parts.push(served)
      if (peers > 0) parts.push({ name: 'serve', ...startServePeers({ count: peers, port: served.port, config, log }) })
    } catch (err) {
      // nothing else has started yet: leave nothing behind (a Redis started for this run included)
      await ctx.close()
      redisChild?.kill()
      throw err
    }
  }
  if (roles.includes('store')) parts.push(startStore(ctx))
  // @NOTE refreshes run agents, sandboxed ones too: next to the server they go in a process of their own, so a
  // misbehaving agent cannot hold the serving event loop
  const childRefresh = roles.includes('refresh') && (opts.childRefresh ?? false)
  if (roles.includes('refresh')) {
    if (childRefresh) children.push(spawnWorker('refresh', ENTRY.refresh, log, 0, () => stopping, children))
    else parts.push(startRefresh(ctx))
  }
  const childWorkers = opts.childScoreWorkers ?? 0
  if (roles.includes('score')) {
    if (childWorkers > 0) {
      for (let i = 0; i < childWorkers; i++) children.push(spawnWorker('score', ENTRY.score, log, i, () => stopping, children))
    } else parts.push(startScore(ctx))
  }
  if (roles.includes('ingest')) {
    const ing = startIngest(ctx)
    parts.push(ing)
    // @NOTE only while the channel is open: sending on a closed one emits an error that would end the process
    const tell = (done: boolean) => process.connected && process.send?.({ type: 'ingest', stats: ing.ingester.stats, done } satisfies IngestMessage)
    const teller = process.send ? setInterval(() => tell(false), INGEST_MESSAGE_MS) : null
    teller?.unref()
    tell(false)
    void ing.done.then(() => {
      if (teller) clearInterval(teller)
      tell(true)
      if (!stopping && config.source.kind === 'replay') log.info({ ...ing.ingester.stats }, 'replay finished; still serving')
    })
  }
  // every process reports what only it sees (agents, ingest, serving) for `skysift status`, /admin and /metrics
  const ingestPart = parts.find((p) => p.name === 'ingest') as ReturnType<typeof startIngest> | undefined
  const reported = roles.filter((r) => (r !== 'score' || childWorkers === 0) && (r !== 'refresh' || !childRefresh))
  parts.push(startProcessReport(ctx, reported, () => (ingestPart ? ingestOf(ctx) : undefined)))
}

/**
 * An edge node (`skysift edge`) until SIGTERM/SIGINT: serving from what a primary publishes to Redis, with no
 * SQLite file. SKYSIFT_SERVE_PROCESSES applies as to `skysift serve` (this process forks the others onto its port).
 */
export async function runEdge(overrides: Partial<Config> = {}, opts: { log?: Logger; listen?: { port: number; reusePort: boolean } } = {}): Promise<void> {
  const config = readConfig(process.env, overrides)
  const log = opts.log ?? createLogger(config.logLevel)
  // @NOTE an edge never starts a Redis of its own: it serves what a primary published to the one it shares
  await ensureRedis(config.redisUrl, log, false)
  const ctx = await AppContext.create(config, log)
  const parts: Running[] = []
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    await stopAll(ctx, parts)
    log.info('stopped')
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
  try {
    const peers = opts.listen ? 0 : config.serveProcesses - 1
    const served = await startEdge(ctx, opts.listen ?? (peers > 0 ? { reusePort: true } : {}))
    parts.push(served)
    if (peers > 0) parts.push({ name: 'serve', ...startServePeers({ count: peers, port: served.port, config, log, role: 'edge' }) })
    // @NOTE an edge reports itself like every other process, so `skysift status` and /admin (on the primary) list it
    parts.push(startProcessReport(ctx, ['edge'], () => undefined))
  } catch (err) {
    await ctx.close()
    throw err
  }
}

/** A stage in a child process of its own, restarted a second after it exits (until shutdown). */
function spawnWorker(stage: 'score' | 'refresh', entry: string, log: Logger, i: number, stopping: () => boolean, children: ChildProcess[]): ChildProcess {
  // @NOTE a capped young generation: at start-up V8 grows it to 64 MiB semi-spaces (128 MiB resident) and keeps them
  const child = fork(entry, [], { env: process.env, stdio: 'inherit', execArgv: [...process.execArgv, '--max-semi-space-size=16'] })
  child.on('exit', (code, signal) => {
    if (stopping()) return
    log.error({ stage, worker: i, code, signal }, `${stage} worker exited; restarting in 1 s`)
    setTimeout(() => {
      // a restarted worker is stopped (and waited for) at shutdown like the first one
      if (!stopping()) children.push(spawnWorker(stage, entry, log, i, stopping, children))
    }, 1000).unref()
  })
  return child
}

/**
 * `npm run bench`: end-to-end numbers for Skysift on this machine.
 *
 *   1. ingest  — N synthetic Jetstream events replayed through the real chain
 *                (ReplaySource → Ingester → BullMQ `events` → score worker(s)
 *                → BullMQ `store` → BatchWriter → SQLite), timed until the
 *                `events_stored` counter reaches what the ingester queued;
 *                compared with a bare JSON.parse loop over the same lines.
 *   2. store   — a realistic store added to the same file: --store-posts posts
 *                over the last 48 hours, written straight through BatchWriter
 *                by a child process (bench/store-gen.ts: not through the
 *                ingest chain, whose rate step 1 measures), scored by the same
 *                static agents, with likes; then --subscribers subscribers'
 *                saved mixes (--mixes distinct ones).
 *   3. refresh — ListBuilder.build of a 5-agent mix (4 of the reader's + the
 *                science feed's topic filter) over --refresh-candidates
 *                candidates, over an unchanged store (refresh_ms) and with
 *                30 s of new posts and likes written between builds
 *                (refresh_churn_ms; bench/refresh.ts), and of each example
 *                feed as configured, with new posts between builds
 *                (refresh_by_feed).
 *   4. serve   — getFeedSkeleton under autocannon (64 connections): anonymous
 *                readers paging both feeds, then a bare Hono route with a body
 *                of the same size for scale, then --auth-readers signed-in
 *                subscribers with their own saved mixes (some personal: the
 *                follows agent over a follow graph), half of them with
 *                feedback (seen items; some "more"/"less", which nudge their
 *                mix), as in real use.
 *   5. personal — a new reader's first personal list after a backfill-sized
 *                graph (1,000 follows, 1,000 likes), and a like-minded build
 *                over --refresh-candidates candidates (bench/personal.ts).
 *   6. sandbox — sandboxed agent throughput (bench/sandbox.ts), in a child.
 *
 * Everything runs against a fresh temp SQLite file and a unique Redis queue
 * prefix, both removed at the end. Progress goes to stderr, then a short
 * table; the last line on stdout is one JSON object with the figures.
 *
 * Flags: --events N (200000)  --score-workers N (SKYSIFT_SCORE_WORKERS or 1; 0 = in-process)
 *        --store-posts N (1000000; 0 = only what ingest stored)  --refresh-candidates C (50000)
 *        --duration S (10, per serve phase)  --connections C (64)
 *        --subscribers N (100000; 0 skips the signed-in phase)  --mixes M (1000)
 *        --auth-readers R (2000: signed-in readers in the load, each with its own token and DID document)
 *        --serve-processes 1,2 (the anonymous and signed-in loads again against `skysift serve` with each number of
 *          serving processes on one port, SKYSIFT_SERVE_PROCESSES, with per-process figures; 0 skips it)
 *        --no-edge (skip the edge node: the same loads through `skysift edge` in front of a publishing `skysift serve`)
 *        --no-sandbox  --seed S (1)  --timeout S (1800)
 *        --ingest-child (read and queue events in a child process, `node workers/ingest.ts`, instead of next to the store writer as `npm start` does)
 *        --cpu-prof DIR (profile the ingest, score worker and refresh worker children; `node --cpu-prof bench/run.ts` profiles this process)
 *        --cpu-prof-load DIR (profile this process while it serves each load: DIR/load-<n>.cpuprofile, the phase in the log)
 *        --heap-prof-load DIR (what this process allocates while it serves each load, objects collected included: DIR/load-<n>.heapprofile)
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { Session } from 'node:inspector/promises'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { pino } from 'pino'
import { EXAMPLE_FEEDS_FILE, readConfig, type Config } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import type { Feed } from '../src/feeds.ts'
import { deleteQueueKeys, producerQueue } from '../src/contracts/queues.ts'
import { QUEUE } from '../src/contracts/jobs.ts'
import { openLists } from '../src/feed/open-lists.ts'
import type { ResolvedMix } from '../src/rank/mix.ts'
import { redisAnswers } from '../src/redis-server.ts'
import type { IngestStats } from '../src/contracts/ingest.ts'
import { startIngest, startScore, startServe, startStore, stopAll, type Running } from '../src/runtime.ts'
import type { IngestMessage } from '../src/stages.ts'
import type { AgentInstance } from '../src/score/host.ts'
import { InstanceRegistry } from '../src/score/instance-registry.ts'
import { InteractionStore } from '../src/store/interactions.ts'
import { MixStore } from '../src/store/mixes.ts'
import { ReaderGraphWriter } from '../src/store/reader-graph-writer.ts'
import { benchKey, serviceJwt, type BenchKey } from './jwt.ts'
import type { LoadInput, LoadResult } from './load.ts'
import type { PlcInput } from './plc.ts'
import type { PrepareInput, PrepareResult } from './prepare.ts'
import type { SandboxBenchResult } from './sandbox.ts'
import type { StoreGenInput } from './store-gen-child.ts'
import {
  fileSize,
  log,
  mb,
  median,
  percentile,
  procCpuSeconds,
  procPeakRssMb,
  procRssMb,
  round,
  runHelper,
  sleep,
  stopChild,
  waitFor,
  withTimeout,
} from './util.ts'
import { boundHeapGrowth } from '../src/util/heap.ts'
import { timePersonal } from './personal.ts'
import { measureEdge, type EdgeRun } from './serve-edge.ts'
import { measureServeProcesses, type ServeProcessesRun } from './serve-processes.ts'
import { LIVE_CHURN_POSTS, timeBuilds } from './refresh.ts'
import { extraInstances, randomPlcDid, refreshMix, subscriberMixes, type BenchMix } from './workload.ts'

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const SCORE_WORKER_ENTRY = here('../workers/score.ts')
const INGEST_ENTRY = here('../workers/ingest.ts')
const REFRESH_ENTRY = here('../workers/refresh.ts')
const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const PAGE_LIMIT = 30
/** signed-in readers who sent feedback (seen items), and who also asked for more and less (nudged weights) */
const FEEDBACK_SHARE = 0.5
const NUDGE_SHARE = 0.1
/** accounts each signed-in reader follows */
const FOLLOWS_PER_READER = 150

// ---------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    events: { type: 'string' },
    'score-workers': { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    subscribers: { type: 'string' },
    mixes: { type: 'string' },
    seed: { type: 'string' },
    timeout: { type: 'string' },
    'store-posts': { type: 'string' },
    'refresh-candidates': { type: 'string' },
    'auth-readers': { type: 'string' },
    'no-sandbox': { type: 'boolean' },
    'ingest-child': { type: 'boolean' },
    'cpu-prof': { type: 'string' },
    'cpu-prof-load': { type: 'string' },
    'heap-prof-load': { type: 'string' },
    'serve-processes': { type: 'string' },
    'no-edge': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
})

if (flags.help) {
  process.stderr.write(fs.readFileSync(here('./run.ts'), 'utf8').split('*/')[0] + '*/\n')
  process.exit(0)
}

function intFlag(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`bench: --${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})\n`)
    process.exit(2)
  }
  return n
}

const EVENTS = intFlag('events', flags.events, 200_000, 1000, 20_000_000)
const DURATION_S = intFlag('duration', flags.duration, 10, 1, 600)
const CONNECTIONS = intFlag('connections', flags.connections, 64, 1, 10_000)
const SUBSCRIBERS = intFlag('subscribers', flags.subscribers, 100_000, 0, 1_000_000)
const MIXES = intFlag('mixes', flags.mixes, 1000, 1, 10_000)
const AUTH_READERS = Math.min(SUBSCRIBERS, intFlag('auth-readers', flags['auth-readers'], 2000, 1, 100_000))
const STORE_POSTS = intFlag('store-posts', flags['store-posts'], 1_000_000, 0, 20_000_000)
const REFRESH_CANDIDATES = intFlag('refresh-candidates', flags['refresh-candidates'], 50_000, 10, 200_000)
const SEED = intFlag('seed', flags.seed, 1, 0, 2 ** 31)
const TIMEOUT_S = intFlag('timeout', flags.timeout, 1800, 10, 86_400)
const SERVE_PROCESSES = (flags['serve-processes'] ?? '1,2')
  .split(',')
  .map((v) => intFlag('serve-processes', v, 1, 0, 64))
  .filter((n) => n > 0)

// ---------------------------------------------------------------------------
// state shared with cleanup
// ---------------------------------------------------------------------------

const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const prefix = `skysift-bench-${process.pid}-${randomBytes(3).toString('hex')}`
let tmpDir: string | null = null
let ctx: AppContext | null = null
const parts: Running[] = []
const scoreChildren: ChildProcess[] = []
let ingestChild: ChildProcess | null = null
let refreshChild: ChildProcess | null = null
let plcChild: ChildProcess | null = null
let bareServer: ServerType | null = null
let rssTimer: NodeJS.Timeout | null = null
let maxSampledRss = 0
let cleaned: Promise<void> | null = null

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    if (rssTimer) clearInterval(rssTimer)
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await withTimeout(fn(), 30_000, what)
      } catch (err) {
        log(`cleanup: ${what} failed: ${(err as Error).message}`)
      }
    }
    if (bareServer) {
      const s = bareServer
      await step(
        'stop bare server',
        () =>
          new Promise<void>((r) => {
            s.close(() => r())
            ;(s as { closeAllConnections?: () => void }).closeAllConnections?.()
          }),
      )
    }
    if (ingestChild) {
      const c = ingestChild
      await step('stop ingest', () => stopChild(c))
    }
    await step('stop score workers', () => Promise.all(scoreChildren.map((c) => stopChild(c))))
    if (refreshChild) {
      const c = refreshChild
      await step('stop refresh worker', () => stopChild(c))
    }
    if (ctx) {
      const c = ctx
      await step('stop stages', () => stopAll(c, parts))
    }
    if (plcChild) {
      const c = plcChild
      await step('stop PLC stand-in', () => stopChild(c, 2000))
    }
    await step('delete Redis keys', async () => {
      const n = await deleteQueueKeys(redisUrl, prefix)
      log(`deleted ${n} Redis keys under ${prefix}:`)
    })
    if (tmpDir) {
      const d = tmpDir
      await step('remove temp dir', () => fs.promises.rm(d, { recursive: true, force: true }))
    }
  })()
  return cleaned
}

// ---------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------

interface Output {
  [k: string]: unknown
}

/** The ingest stage of the run: its counters, and when the replay has been read and queued. */
interface IngestStage {
  stats(): IngestStats
  /** resolves when reading starts */
  started: Promise<void>
  done: Promise<void>
  /** the process it runs in, when not this one */
  child: ChildProcess | null
}

/**
 * Profiles this process from now: its CPU, or (`heap`) what it allocates, objects collected since included. The
 * function returned stops it and writes the profile to a file.
 */
async function startProfile(heap = false): Promise<(file: string) => Promise<void>> {
  const session = new Session()
  session.connect()
  if (heap) {
    await session.post('HeapProfiler.enable')
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  } else {
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  return async (file) => {
    const { profile } = heap ? await session.post('HeapProfiler.stopSampling') : await session.post('Profiler.stop')
    session.disconnect()
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, JSON.stringify(profile))
  }
}

/** Starts the ingest in this process, next to the store writer as `npm start` runs it, or with --ingest-child in a process of its own. */
function startIngestStage(env: NodeJS.ProcessEnv, profArgv: string[]): IngestStage {
  if (!flags['ingest-child']) {
    const ing = startIngest(ctx!)
    parts.push(ing)
    return { stats: () => ing.ingester.stats, started: Promise.resolve(), done: ing.done, child: null }
  }
  const child = fork(INGEST_ENTRY, [], { env, stdio: ['ignore', 2, 2, 'ipc'], execArgv: [...process.execArgv, ...profArgv] })
  ingestChild = child
  let stats: IngestStats = {
    received: 0,
    queued: 0,
    rejected: 0,
    batches: 0,
    lastCursor: null,
    lastEventTime: null,
    pausedForBackpressureMs: 0,
    redisErrors: 0,
    rewinds: 0,
  }
  let started!: () => void
  const start = new Promise<void>((r) => (started = r))
  const done = new Promise<void>((resolve, reject) => {
    child.on('message', (m: IngestMessage) => {
      if (m?.type !== 'ingest') return
      stats = m.stats
      started()
      if (m.done) resolve()
    })
    child.on('exit', (code, signal) => {
      if (!cleaned) reject(new Error(`the ingest process exited early (${signal ?? code})`))
    })
  })
  done.catch(() => {})
  return { stats: () => stats, started: Promise.race([start, done]), done, child }
}

async function main(): Promise<Output> {
  // this process is the main process of `npm start` (serve, store, ingest): its heap is bounded as runStages bounds it
  boundHeapGrowth()
  const tStart = performance.now()
  const loadAtStart = round(os.loadavg()[0], 2)
  if (loadAtStart > 1) log(`WARNING: load average is ${loadAtStart} before the run; other work on this machine will skew the figures`)
  rssTimer = setInterval(() => {
    maxSampledRss = Math.max(maxSampledRss, process.memoryUsage.rss())
  }, 250)
  rssTimer.unref()

  if (!(await redisAnswers(redisUrl, 2000))) {
    throw new Error(`Redis is not reachable at ${redisUrl}. Start redis-server (or set REDIS_URL) and run the benchmark again.`)
  }
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-bench-'))
  const file = path.join(tmpDir, 'events.jsonl')
  const dbPath = path.join(tmpDir, 'bench.db')
  log(`temp dir ${tmpDir}, queue prefix ${prefix}`)

  // -- 1. synthetic input and parse baselines (child process) ---------------
  log(`generating ${EVENTS} synthetic Jetstream events…`)
  const prep = await runHelper<PrepareResult>(here('./prepare.ts'), { file, events: EVENTS, seed: SEED } satisfies PrepareInput, 300_000)
  log(
    `generated ${prep.lines} lines (${mb(prep.bytes)} MB) in ${round(prep.generateMs / 1000, 1)} s; JSON.parse ${Math.round(prep.jsonParseEventsPerS)}/s, ` +
      `decodeJetstream ${Math.round(prep.decodeEventsPerS)}/s, ReplaySource alone ${Math.round(prep.replaySourceEventsPerS)}/s`,
  )

  // -- 2. subscribers' keys and a stand-in PLC directory ---------------------
  const keys = SUBSCRIBERS > 0 ? Array.from({ length: 8 }, () => benchKey()) : []
  const subscribers: { did: string; key: BenchKey }[] = []
  for (let i = 0; i < SUBSCRIBERS; i++) subscribers.push({ did: randomPlcDid(), key: keys[i % keys.length] })
  let plcUrl = 'http://127.0.0.1:9' // never asked when there are no signed-in readers
  if (SUBSCRIBERS > 0) {
    // only the readers in the load present tokens, so only they need DID documents
    const docs: Record<string, unknown> = {}
    for (let i = 0; i < AUTH_READERS; i++) {
      const { did, key } = subscribers[i]
      docs[did] = {
        '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
        id: did,
        alsoKnownAs: [`at://reader${i}.bench.invalid`],
        verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: key.did.slice('did:key:'.length) }],
        service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.bench.invalid' }],
      }
    }
    const docsFile = path.join(tmpDir, 'plc-docs.json')
    fs.writeFileSync(docsFile, JSON.stringify(docs))
    const { port } = await runHelper<{ port: number }>(here('./plc.ts'), { docsFile } satisfies PlcInput, 30_000, { keepAlive: (c) => (plcChild = c) })
    plcUrl = `http://127.0.0.1:${port}`
  }

  // -- 3. configuration: the same environment for this process and the workers
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.SKYSIFT_SERVICE_DID
  delete env.SKYSIFT_PUBLISHER_DID
  Object.assign(env, {
    REDIS_URL: redisUrl,
    SKYSIFT_QUEUE_PREFIX: prefix,
    SKYSIFT_DB_PATH: dbPath,
    SKYSIFT_SOURCE: `replay:${file}#full`,
    SKYSIFT_PORT: '0',
    SKYSIFT_HOST: '127.0.0.1',
    SKYSIFT_PUBLIC_URL: 'https://feeds.bench.invalid',
    SKYSIFT_FEEDS_FILE: EXAMPLE_FEEDS_FILE,
    SKYSIFT_PLC_URL: plcUrl,
    SKYSIFT_ALLOW_INSECURE_HTTP: 'true',
    SKYSIFT_LOG_LEVEL: 'warn',
    SKYSIFT_START_REDIS: 'never',
  })
  const config: Readonly<Config> = readConfig(env)
  const workers = intFlag('score-workers', flags['score-workers'], config.scoreWorkers, 0, 64)
  env.SKYSIFT_SCORE_WORKERS = String(workers)
  const logger = pino({ level: 'warn', base: { proc: 'bench' } }, pino.destination(2))
  ctx = new AppContext(config, logger)
  const [fresh, science] = [ctx.feeds.find((f) => f.rkey === 'fresh'), ctx.feeds.find((f) => f.rkey === 'science')]
  if (!fresh || !science) throw new Error('the example feeds file no longer has the "fresh" and "science" feeds')

  // -- 4. static agent instances and subscriber mixes ------------------------
  const mixes = subscriberMixes(ctx.host, ctx.feeds, MIXES)
  const refreshMixes = [
    { feed: science, mix: refreshMix(ctx.host, science) },
    { feed: fresh, mix: refreshMix(ctx.host, fresh) },
  ]
  const wanted: AgentInstance[] = [
    ...ctx.feeds.flatMap((f) => f.defaults.entries.map((e) => e.inst)),
    ...extraInstances(ctx.host),
    ...[...mixes, ...refreshMixes].flatMap((m) => m.mix.entries.map((e) => e.inst)),
  ]
  const staticInstances = [...new Map(wanted.filter((i) => !i.dynamic).map((i) => [i.key, i])).values()]
  // registered before any worker starts, the way a saved mix registers them (the workers cache the set for 5 s)
  await new InstanceRegistry(ctx.redis(), prefix, ctx.host, logger).register(staticInstances)
  log(`static agent instances scoring every post: ${staticInstances.length} (${staticInstances.map((i) => i.key).join(', ')})`)

  // -- 5. stages, as `npm start` runs them -----------------------------------
  const serveRun = await startServe(ctx)
  parts.push(serveRun)
  const storeRun = startStore(ctx)
  parts.push(storeRun)
  // @NOTE the refresh worker in a process of its own, as `npm start` runs it (child processes are started below)
  // time the one SQLite writer: how busy it keeps the main thread (a transaction of one or more store jobs, commit included)
  const writes = { n: 0, jobs: 0, ms: 0, maxMs: 0 }
  const writeGroup = storeRun.writer.writeGroup.bind(storeRun.writer)
  storeRun.writer.writeGroup = (batches) => {
    const t = performance.now()
    try {
      return writeGroup(batches)
    } finally {
      const d = performance.now() - t
      writes.n++
      writes.jobs += batches.length
      writes.ms += d
      writes.maxMs = Math.max(writes.maxMs, d)
    }
  }
  const profArgv = flags['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(flags['cpu-prof'])] : []
  if (workers > 0) {
    const execArgv = profArgv
    for (let i = 0; i < workers; i++) {
      // the flags src/stages.ts starts score workers with
      const child = fork(SCORE_WORKER_ENTRY, [], {
        env,
        stdio: ['ignore', 2, 2, 'ipc'],
        execArgv: [...process.execArgv, '--max-semi-space-size=16', ...execArgv],
      })
      child.on('exit', (code, signal) => {
        if (!cleaned) log(`score worker ${i} exited early (${signal ?? code})`)
      })
      scoreChildren.push(child)
    }
  } else {
    parts.push(startScore(ctx))
  }
  refreshChild = fork(REFRESH_ENTRY, [], { env, stdio: ['ignore', 2, 2, 'ipc'], execArgv: [...process.execArgv, ...profArgv] })
  refreshChild.on('exit', (code, signal) => {
    if (!cleaned) log(`the refresh worker exited early (${signal ?? code})`)
  })
  const eventsQueue = producerQueue(QUEUE.events, redisUrl, prefix)
  const storeQueue = producerQueue(QUEUE.store, redisUrl, prefix)
  let idleWorkerRss: (number | null)[] = []
  eventsQueue.on('error', () => {})
  storeQueue.on('error', () => {})
  try {
    if (workers > 0) {
      await waitFor(
        async () => {
          if (scoreChildren.some((c) => c.exitCode !== null)) throw new Error('a score worker exited during start-up')
          return (await eventsQueue.getWorkersCount()) >= workers
        },
        30_000,
        `${workers} score worker process(es) to connect`,
        100,
      )
    }
    log(`stages up: serve ${serveRun.url}, store, refresh, score (${workers > 0 ? `${workers} child process(es)` : 'in-process'})`)
    await sleep(2000)
    idleWorkerRss = scoreChildren.map((c) => procRssMb(c.pid!))

    // -- 6. ingest -----------------------------------------------------------
    const sqlite = ctx.db.sqlite
    const counter = sqlite.prepare('SELECT value FROM counters WHERE name = ?').pluck()
    const stored = () => Number(counter.get('events_stored') ?? 0)
    const redisCpu = async () => {
      const info = await ctx!.redis().info('cpu')
      const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0)
      return v('used_cpu_user') + v('used_cpu_sys')
    }
    const cpu0 = { main: process.cpuUsage(), kids: scoreChildren.map((c) => procCpuSeconds(c.pid!) ?? 0), redis: await redisCpu() }
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    const ing = startIngestStage(env, profArgv)
    // @NOTE timed from the child's first message (reading starts): loading its modules is start-up, not ingest
    await ing.started
    const t0 = performance.now()
    const ingestCpu0 = ing.child ? (procCpuSeconds(ing.child.pid!) ?? 0) : 0
    let tQueued: number | null = null
    void ing.done.then(() => (tQueued = performance.now()))
    let lastProgress = { at: Date.now(), key: '' }
    let lastLog = 0
    while (!(tQueued !== null && stored() >= ing.stats().queued)) {
      await sleep(20)
      if (ing.child && (ing.child.exitCode !== null || ing.child.signalCode !== null)) throw new Error('the ingest process exited during the run')
      const s = ing.stats()
      const key = `${s.received}/${stored()}`
      if (key !== lastProgress.key) lastProgress = { at: Date.now(), key }
      else if (Date.now() - lastProgress.at > 60_000)
        throw new Error(`ingest made no progress for 60 s (read ${s.received}, queued ${s.queued}, stored ${stored()})`)
      if (Date.now() - lastLog > 2000) {
        lastLog = Date.now()
        const el = (performance.now() - t0) / 1000
        log(
          `ingest ${round(el, 1)} s: read ${s.received}/${prep.lines}, queued ${s.queued}, stored ${stored()} ` +
            `(${Math.round(stored() / el)}/s), events waiting ${await eventsQueue.getWaitingCount()}, store waiting ${await storeQueue.getWaitingCount()}`,
        )
      }
    }
    const t1 = performance.now()
    loopDelay.disable()
    const ingestS = (t1 - t0) / 1000
    const mainCpuS = (() => {
      const u = process.cpuUsage(cpu0.main)
      return (u.user + u.system) / 1e6
    })()
    const kidsCpuS = scoreChildren.map((c, i) => (procCpuSeconds(c.pid!) ?? 0) - cpu0.kids[i])
    const ingestCpuS = ing.child ? (procCpuSeconds(ing.child.pid!) ?? 0) - ingestCpu0 : 0
    const redisCpuS = (await redisCpu()) - cpu0.redis
    const st = ing.stats()
    if (st.rejected) log(`note: the ingester rejected ${st.rejected} events`)
    const ingestEps = prep.lines / ingestS
    log(`ingest done: ${prep.lines} events (${st.queued} queued) durable in ${round(ingestS, 2)} s → ${Math.round(ingestEps)} events/s`)
    const dbCount = (sql: string) => Number(sqlite.prepare(sql).pluck().get())
    const posts = dbCount('SELECT count(*) FROM posts')
    const scores = dbCount('SELECT count(*) FROM agent_scores')
    const scoredInstances = dbCount('SELECT count(DISTINCT instance) FROM agent_scores')
    const sqliteAfterIngest = fileSize(dbPath) + fileSize(`${dbPath}-wal`)
    const rssAfterIngest = process.memoryUsage.rss()
    const workerRss = scoreChildren.map((c) => procPeakRssMb(c.pid!))
    const ingestRss = ing.child ? procPeakRssMb(ing.child.pid!) : null

    // -- 7. a realistic store, written straight through the writer (child process)
    let storeGen: { posts: number; likes: number; ms: number } | null = null
    if (STORE_POSTS > 0) {
      log(`writing a store of ${STORE_POSTS} posts over 48 h through BatchWriter (child process)…`)
      storeGen = await runHelper<{ posts: number; likes: number; ms: number }>(
        here('./store-gen-child.ts'),
        {
          posts: STORE_POSTS,
          hours: 48,
          seed: SEED,
          instances: staticInstances.map((i) => ({ agent: i.def.id, options: i.rawOptions })),
        } satisfies StoreGenInput,
        TIMEOUT_S * 1000,
        { env },
      )
      log(
        `  ${storeGen.posts} posts and ${storeGen.likes} likes in ${round(storeGen.ms / 1000, 1)} s (${Math.round(storeGen.posts / (storeGen.ms / 1000))} posts/s, ${Math.round((storeGen.posts + storeGen.likes) / (storeGen.ms / 1000))} events/s)`,
      )
    }
    const storePosts = dbCount('SELECT count(*) FROM posts')

    // -- 8. refresh: snapshot builds -------------------------------------------
    const { lists } = openLists(sqlite, ctx.host, logger, config)
    const candidates = (feed: Feed) =>
      Math.min(feed.maxCandidates, dbCount(`SELECT count(*) FROM posts WHERE created_at >= ${Date.now() - feed.windowHours * 3_600_000}`))
    const timeBuild = (feed: Feed, mix: ResolvedMix) => {
      const t = performance.now()
      lists.build(feed, mix)
      return performance.now() - t
    }
    const appCtx = ctx
    const timeRefresh = async (feed: Feed, mix: ResolvedMix, runs = 5, churn = LIVE_CHURN_POSTS) => {
      const t = await timeBuilds(appCtx, lists, feed, mix, runs, churn)
      return {
        feed: feed.rkey,
        agents: mix.entries.length,
        candidates: candidates(feed),
        first_ms: t.first_ms,
        median_ms: t.median_ms,
        median_cpu_ms: t.median_cpu_ms,
        churn_posts: churn,
        churn_likes: t.churn_likes,
      }
    }
    // the issue's scenario: 5 agents over REFRESH_CANDIDATES candidates (the science feed's window, more candidates),
    // over an unchanged store (as earlier rounds measured it), then with 30 s of new posts between builds
    const bigFeed: Feed = { ...science, maxCandidates: REFRESH_CANDIDATES }
    const big = await timeRefresh(bigFeed, refreshMix(ctx.host, bigFeed), 11, 0)
    const bigChurn = await timeRefresh(bigFeed, refreshMix(ctx.host, bigFeed), 11)
    log(
      `refresh: ${big.agents} agents over ${big.candidates} candidates: ${big.median_ms} ms (first ${big.first_ms} ms); with ${bigChurn.churn_posts} new posts and ${bigChurn.churn_likes} likes between builds ${bigChurn.median_ms} ms`,
    )
    const refresh = []
    for (const { feed, mix } of refreshMixes) refresh.push(await timeRefresh(feed, mix))
    for (const r of refresh)
      log(`refresh ${r.feed} as configured: ${r.agents} agents over ${r.candidates} candidates: ${r.median_ms} ms (first ${r.first_ms} ms)`)
    // personal lists: new readers with a backfill-sized graph, and like-minded over the refresh's candidates (bench/personal.ts)
    const personal = await timePersonal(ctx, { candidates: REFRESH_CANDIDATES, follows: 1_000, likes: 1_000, readers: 5, runs: 7 })
    log(
      `personal: a new reader's first list ${personal.personal_first_list_ms} ms; like-minded over ${personal.personal_candidates} candidates ${personal.like_minded_build_ms} ms (${personal.like_minded_build_cpu_ms} CPU ms; ${personal.like_graph_rows} rows in the like graph)`,
    )

    // -- 9. serve ------------------------------------------------------------
    const base = serveRun.url
    const skeletonPath = (feed: Feed, cursor?: string) =>
      `/xrpc/${SKELETON}?feed=${encodeURIComponent(feed.uri)}&limit=${PAGE_LIMIT}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const get = async (p: string, headers: Record<string, string> = {}) => {
      const res = await fetch(base + p, { headers, signal: AbortSignal.timeout(30_000) })
      const text = await res.text()
      if (res.status !== 200) throw new Error(`GET ${p} → ${res.status} ${text.slice(0, 300)}`)
      return { text, body: JSON.parse(text) as { feed: { post: string; feedContext: string }[]; cursor?: string } }
    }
    const snapshots = () => dbCount('SELECT count(*) FROM feed_snapshots')
    let loads = 0
    type InBenchLoad = LoadResult & { snapshotsBuilt?: number; loopDelayMs?: { p50: number; p99: number; max: number }; cpuMsPerRequest?: number }
    const load = async (name: string, url: string, requests: LoadInput['requests']): Promise<InBenchLoad> => {
      const before = snapshots()
      // this process's event loop (the server's) and CPU (its threads included) while it serves the load
      const delay = monitorEventLoopDelay({ resolution: 1 })
      delay.enable()
      const cpu0 = process.cpuUsage()
      const profDir = flags['cpu-prof-load'] ?? flags['heap-prof-load']
      const profile = profDir ? await startProfile(!flags['cpu-prof-load']) : null
      const profFile = profile && path.join(path.resolve(profDir!), `load-${++loads}.${flags['cpu-prof-load'] ? 'cpuprofile' : 'heapprofile'}`)
      log(
        `load "${name}": ${CONNECTIONS} connections for ${DURATION_S} s over ${requests.length} distinct requests${profFile ? ` (profiled: ${profFile})` : ''}…`,
      )
      const r = await runHelper<LoadResult>(
        here('./load.ts'),
        { url, connections: CONNECTIONS, durationS: DURATION_S, requests } satisfies LoadInput,
        (DURATION_S + 60) * 1000,
      )
      const cpu = process.cpuUsage(cpu0)
      delay.disable()
      if (profile && profFile) await profile(profFile)
      const built = snapshots() - before
      const loopDelayMs = { p50: round(delay.percentile(50) / 1e6, 1), p99: round(delay.percentile(99) / 1e6, 1), max: round(delay.max / 1e6, 1) }
      const cpuMsPerRequest = r.total ? round((cpu.user + cpu.system) / 1000 / r.total, 3) : undefined
      log(
        `  ${Math.round(r.rps)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.non2xx} non-2xx, ${r.errors} errors, ${Math.round(r.bytesPerResponse)} B/response, ${built} snapshots built meanwhile; event loop delay p99 ${loopDelayMs.p99} ms (max ${loopDelayMs.max}), ${cpuMsPerRequest} CPU ms/request in this process`,
      )
      if (r.non2xx || r.errors) log(`  WARNING: "${name}" had ${r.non2xx} non-2xx responses and ${r.errors} errors`)
      return { ...r, snapshotsBuilt: built, loopDelayMs, cpuMsPerRequest }
    }

    // anonymous readers paging both feeds (default mixes)
    const anonRequests: LoadInput['requests'] = []
    let sampleBody: unknown = null
    let sampleBytes = 0
    for (const feed of [fresh, science]) {
      let cursor: string | undefined
      for (let page = 0; page < 3; page++) {
        const p = skeletonPath(feed, cursor)
        const { text, body } = await get(p)
        if (!body.feed.length) throw new Error(`feed ${feed.rkey} page ${page + 1} is empty after ingest`)
        if (!sampleBody) {
          sampleBody = body
          sampleBytes = Buffer.byteLength(text)
        }
        anonRequests.push({ path: p })
        cursor = body.cursor
        if (!cursor) break
      }
    }
    const anon = await load('anonymous, both feeds, 3 pages', base, anonRequests)

    // a bare Hono route on the same server library, answering the same JSON (before the signed-in phase, whose
    // list refreshes would share the process)
    const bare = new Hono()
    const bareBody = sampleBody as object
    bare.get(`/xrpc/${SKELETON}`, (c) => c.json(bareBody))
    bareServer = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: bare.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`
    const bareRes = await load('bare Hono, same body', bareUrl, [{ path: anonRequests[0].path }])

    // signed-in subscribers with their own saved mixes
    let auth: InBenchLoad | null = null
    let authLoad: LoadInput['requests'] | null = null
    let mixBuilds: number[] = []
    if (SUBSCRIBERS > 0) {
      const store = new MixStore(sqlite)
      const of = (i: number): BenchMix => mixes[i % mixes.length]
      const t = performance.now()
      sqlite.transaction(() => {
        subscribers.forEach((s, i) => {
          const { feed, mix } = of(i)
          store.put({ subscriber: s.did, feed: feed.uri, source: 'private', agents: mix.agents, fingerprint: mix.fingerprint })
        })
      })()
      log(`saved ${subscribers.length} subscribers' mixes (${mixes.length} distinct) in ${round((performance.now() - t) / 1000, 1)} s`)
      // the readers follow people who post (what the personal agent ranks by), as the writer keeps it from the firehose,
      // and their graph is known (backfilled when they first came): readers who came before, whose PDS (a name that
      // resolves nowhere here) is not asked again during the loads
      const authors = [...new Set(sqlite.prepare('SELECT author FROM posts ORDER BY id DESC LIMIT 50000').pluck().all() as string[])]
      const follow = sqlite.prepare('INSERT OR IGNORE INTO follows (uri, author, subject) VALUES (?, ?, ?)')
      const graph = new ReaderGraphWriter(sqlite)
      const backfilledAt = Date.now()
      sqlite.transaction(() => {
        for (let i = 0; i < AUTH_READERS; i++) {
          for (let k = 0; k < FOLLOWS_PER_READER && authors.length; k++)
            follow.run(`at://${subscribers[i].did}/app.bsky.graph.follow/b${k}`, subscribers[i].did, authors[(i * 7919 + k * 104_729) % authors.length])
          graph.reader({ t: 'reader', did: subscribers[i].did, backfilledAt }, backfilledAt)
        }
      })()
      // each list is built once before the load, as the first reader of a mix would trigger
      mixBuilds = mixes.map(({ feed, mix }) => timeBuild(feed, mix))
      log(`built the ${mixes.length} mixes' lists: median ${round(median(mixBuilds), 1)} ms, p90 ${round(percentile(mixBuilds, 90), 1)} ms each`)
      const exp = Math.floor(Date.now() / 1000) + 3600
      const authRequests: LoadInput['requests'] = subscribers.slice(0, AUTH_READERS).map((s, i) => ({
        path: skeletonPath(of(i).feed),
        headers: { authorization: `Bearer ${serviceJwt(s.key, { iss: s.did, aud: config.serviceDid, lxm: SKELETON, exp })}` },
      }))
      // the token must really select the subscriber's mix: its fingerprint is in every feedContext
      for (const i of [0, 1, authRequests.length - 1]) {
        const { body } = await get(authRequests[i].path, authRequests[i].headers)
        const fp = body.feed[0]?.feedContext.split('|')[1]
        if (fp !== of(i).mix.fingerprint)
          throw new Error(`signed-in request ${i} was not served the subscriber's mix (got ${fp}, want ${of(i).mix.fingerprint}); is the token rejected?`)
      }
      // steady state: every reader once first (their DID documents resolved and cached, personal lists built, as for
      // readers who came before)
      const warm = async () => {
        const tw = performance.now()
        const pages: { feed: { post: string; feedContext: string }[] }[] = []
        for (let i = 0; i < authRequests.length; i += 16)
          pages.push(...(await Promise.all(authRequests.slice(i, i + 16).map(async (r) => (await get(r.path, r.headers)).body))))
        log(`warmed ${authRequests.length} readers in ${round((performance.now() - tw) / 1000, 1)} s`)
        return pages
      }
      const firstPages = await warm()
      // feedback as the app sends it: FEEDBACK_SHARE of the readers reported the items of their first page as seen, and
      // NUDGE_SHARE also asked for more of one item and less of another (their weights move: a list of their own)
      const interactions = new InteractionStore(sqlite)
      let withFeedback = 0
      let nudged = 0
      sqlite
        .transaction(() => {
          firstPages.forEach((page, i) => {
            if (i % 100 >= FEEDBACK_SHARE * 100 || page.feed.length < 3) return
            const feed = of(i).feed.uri
            const items: Parameters<InteractionStore['add']>[1] = page.feed.map((it) => ({
              feed,
              postUri: it.post,
              event: 'seen',
              feedContext: it.feedContext,
              reqId: null,
            }))
            if (i % 100 < NUDGE_SHARE * 100) {
              items.push({ ...items[0], event: 'more' }, { ...items[2], event: 'less' })
              nudged++
            }
            interactions.add(subscribers[i].did, items)
            withFeedback++
          })
          // @NOTE IMMEDIATE: the refresh worker writes snapshots meanwhile, and a deferred transaction that reads first
          // cannot wait for its lock
        })
        .immediate()
      log(`${withFeedback} readers sent feedback (seen items; ${nudged} of them also "more" and "less")`)
      await warm()
      auth = await load(`${AUTH_READERS} signed-in readers of ${subscribers.length} subscribers, ${mixes.length} mixes`, base, authRequests)
      authLoad = authRequests
    }

    // the same loads against `skysift serve` with 1, 2, … processes on one port (SKYSIFT_SERVE_PROCESSES)
    const byProcesses = SERVE_PROCESSES.length
      ? await measureServeProcesses({
          env,
          counts: SERVE_PROCESSES,
          connections: CONNECTIONS,
          durationS: DURATION_S,
          anon: anonRequests,
          auth: authLoad,
          redisUrl,
          prefix,
        })
      : []
    // and through an edge node (serving from Redis alone) in front of a primary that publishes for it
    const edgeRun: EdgeRun | null = flags['no-edge']
      ? null
      : await measureEdge({ env, connections: CONNECTIONS, durationS: DURATION_S, anon: anonRequests, auth: authLoad, redisUrl, prefix })

    // -- 10. sandboxed agents (child process) ---------------------------------
    const sqliteEnd = fileSize(dbPath) + fileSize(`${dbPath}-wal`)
    const maxRss = Math.max(maxSampledRss, process.resourceUsage().maxRSS * 1024)
    const kidsRss = scoreChildren.map((c) => procPeakRssMb(c.pid!))
    let sandbox: SandboxBenchResult | null = null
    if (!flags['no-sandbox']) {
      log('sandboxed agent throughput (bench/sandbox.ts)…')
      sandbox = await runHelper<SandboxBenchResult>(here('./sandbox-child.ts'), {}, 120_000)
      log(`  ${sandbox.sandbox_posts_per_s} posts/s through the sandbox (QuickJS alone ${sandbox.quickjs_raw_posts_per_s}/s)`)
    }

    // -- 11. figures ---------------------------------------------------------
    const out: Output = {
      events: prep.lines,
      events_queued: st.queued,
      score_workers: workers > 0 ? `${workers} child process${workers > 1 ? 'es' : ''}` : 'in-process',
      static_agents_per_post: staticInstances.length,
      ingest_events_per_s: Math.round(ingestEps),
      ingest_s: round(ingestS, 2),
      ingest_all_queued_s: tQueued ? round((tQueued - t0) / 1000, 2) : null,
      json_parse_events_per_s: Math.round(prep.jsonParseEventsPerS),
      ingest_vs_json_parse: round(ingestEps / prep.jsonParseEventsPerS, 4),
      decode_events_per_s: Math.round(prep.decodeEventsPerS),
      replay_source_events_per_s: Math.round(prep.replaySourceEventsPerS),
      ingest_process: ing.child ? 'child process' : 'in-process',
      ingest_cpu_pct: {
        main: round((100 * mainCpuS) / ingestS),
        ...(ing.child ? { ingest: round((100 * ingestCpuS) / ingestS) } : {}),
        score_workers: kidsCpuS.map((s) => round((100 * s) / ingestS)),
        redis: round((100 * redisCpuS) / ingestS),
      },
      // CPU seconds all processes spent per 100,000 events: unlike events/s, hardly moved by other work on the machine
      ingest_cpu_s_per_100k_events: round(((mainCpuS + ingestCpuS + kidsCpuS.reduce((a, b) => a + b, 0) + redisCpuS) * 100_000) / prep.lines, 2),
      ingest_backpressure_ms: st.pausedForBackpressureMs,
      ingest_store_busy_pct: round((100 * writes.ms) / (ingestS * 1000)),
      ingest_store_write_ms: {
        transactions: writes.n,
        jobs: writes.jobs,
        mean: round(writes.ms / Math.max(1, writes.n), 1),
        per_job: round(writes.ms / Math.max(1, writes.jobs), 1),
        max: round(writes.maxMs, 1),
      },
      ingest_event_loop_delay_ms: {
        p50: round(loopDelay.percentile(50) / 1e6, 1),
        p99: round(loopDelay.percentile(99) / 1e6, 1),
        max: round(loopDelay.max / 1e6, 1),
      },
      posts_stored: posts,
      agent_scores_stored: scores,
      scored_instances: scoredInstances,
      store_posts: storePosts,
      store_gen_posts_per_s: storeGen ? Math.round(storeGen.posts / (storeGen.ms / 1000)) : null,
      store_gen_events_per_s: storeGen ? Math.round((storeGen.posts + storeGen.likes) / (storeGen.ms / 1000)) : null,
      refresh_ms: big.median_ms,
      refresh_cpu_ms: big.median_cpu_ms,
      refresh_first_ms: big.first_ms,
      refresh_candidates: big.candidates,
      refresh_agents: big.agents,
      refresh_feed: big.feed,
      refresh_churn_ms: bigChurn.median_ms,
      refresh_churn_cpu_ms: bigChurn.median_cpu_ms,
      refresh_churn_posts: bigChurn.churn_posts,
      refresh_churn_likes: bigChurn.churn_likes,
      refresh_by_feed: refresh,
      ...personal,
      serve_rps: Math.round(anon.rps),
      serve_p50_ms: anon.p50Ms,
      serve_p99_ms: anon.p99Ms,
      serve_non2xx: anon.non2xx + anon.errors,
      serve_body_bytes: sampleBytes,
      serve_auth_rps: auth ? Math.round(auth.rps) : null,
      serve_auth_p50_ms: auth?.p50Ms ?? null,
      serve_auth_p99_ms: auth?.p99Ms ?? null,
      serve_auth_vs_anon: auth ? round(auth.rps / anon.rps, 3) : null,
      serve_auth_non2xx: auth ? auth.non2xx + auth.errors : null,
      serve_auth_subscribers: SUBSCRIBERS,
      serve_auth_readers: SUBSCRIBERS ? AUTH_READERS : 0,
      serve_auth_mixes: SUBSCRIBERS ? mixes.length : 0,
      mix_build_median_ms: mixBuilds.length ? round(median(mixBuilds), 1) : null,
      mix_build_p90_ms: mixBuilds.length ? round(percentile(mixBuilds, 90), 1) : null,
      bare_hono_rps: Math.round(bareRes.rps),
      bare_hono_p50_ms: bareRes.p50Ms,
      bare_hono_p99_ms: bareRes.p99Ms,
      serve_vs_bare_hono: round(anon.rps / bareRes.rps, 3),
      serve_connections: CONNECTIONS,
      serve_duration_s: DURATION_S,
      ...Object.fromEntries(byProcesses.map((r) => [`serve_processes_${r.processes}`, r])),
      serve_edge: edgeRun,
      snapshots_built_during_load: { anonymous: anon.snapshotsBuilt, auth: auth?.snapshotsBuilt ?? null },
      // the server in this process during its loads: its event loop's delay, and its CPU (threads included) per request
      serve_loop_delay_ms: { anonymous: anon.loopDelayMs ?? null, auth: auth?.loopDelayMs ?? null },
      serve_cpu_ms_per_request_in_bench: { anonymous: anon.cpuMsPerRequest ?? null, auth: auth?.cpuMsPerRequest ?? null },
      rss_mb: mb(maxRss),
      rss_after_ingest_mb: mb(rssAfterIngest),
      ingest_rss_mb: ingestRss,
      score_worker_rss_mb: kidsRss.length ? kidsRss : workerRss,
      score_worker_idle_rss_mb: idleWorkerRss,
      sqlite_mb: mb(sqliteEnd),
      sqlite_wal_mb: mb(fileSize(`${dbPath}-wal`)),
      sqlite_after_ingest_mb: mb(sqliteAfterIngest),
      sandbox_posts_per_s: sandbox?.sandbox_posts_per_s ?? null,
      sandbox_quickjs_raw_posts_per_s: sandbox?.quickjs_raw_posts_per_s ?? null,
      sandbox_vs_raw: sandbox?.sandbox_vs_raw ?? null,
      sandbox_trivial_agent_vs_raw: sandbox?.trivial_agent_vs_raw ?? null,
      sandbox_quickjs_same_agent_posts_per_s: sandbox?.quickjs_same_agent_posts_per_s ?? null,
      sandbox_vs_same_agent: sandbox?.sandbox_vs_same_agent ?? null,
      sandbox_1000_posts_per_s: sandbox?.sandbox_1000_posts_per_s ?? null,
      sandbox_vs_same_agent_1000: sandbox?.sandbox_vs_same_agent_1000 ?? null,
      batch_size: config.batchSize,
      queue_high_water: config.queueHighWater,
      node: process.version,
      loadavg_at_start: loadAtStart,
      cpus: os.availableParallelism(),
      total_s: round((performance.now() - tStart) / 1000, 1),
    }
    await eventsQueue.close()
    await storeQueue.close()
    return out
  } catch (err) {
    await eventsQueue.close().catch(() => {})
    await storeQueue.close().catch(() => {})
    throw err
  }
}

function table(o: Output): string {
  const pct = (x: unknown) => `${round(100 * (x as number), 1)}%`
  const rows: [string, string][] = [
    ['events', `${o.events} (${o.events_queued} queued; ${o.static_agents_per_post} static agents per post; score: ${o.score_workers})`],
    ['ingest, end to end', `${o.ingest_events_per_s} events/s (${o.ingest_s} s)`],
    ['JSON.parse alone', `${o.json_parse_events_per_s} events/s (ingest = ${pct(o.ingest_vs_json_parse)} of it)`],
    ['ingest CPU', `${JSON.stringify(o.ingest_cpu_pct)} %; ${o.ingest_cpu_s_per_100k_events} CPU s per 100k events`],
    [
      'store writer',
      `busy ${o.ingest_store_busy_pct}% of ingest; ${JSON.stringify(o.ingest_store_write_ms)} ms/transaction; event-loop delay ${JSON.stringify(o.ingest_event_loop_delay_ms)} ms`,
    ],
    [
      'store (generated)',
      o.store_gen_posts_per_s === null
        ? `${o.store_posts} posts`
        : `${o.store_posts} posts; written at ${o.store_gen_posts_per_s} posts/s (${o.store_gen_events_per_s} events/s with likes)`,
    ],
    [
      'refresh',
      `${o.refresh_ms} ms, ${o.refresh_cpu_ms} CPU ms (${o.refresh_agents} agents, ${o.refresh_candidates} candidates, ${o.refresh_feed}; first ${o.refresh_first_ms} ms)`,
    ],
    [
      'refresh, changing',
      `${o.refresh_churn_ms} ms, ${o.refresh_churn_cpu_ms} CPU ms (${o.refresh_churn_posts} new posts and ${o.refresh_churn_likes} likes between builds)`,
    ],
    [
      'personal lists',
      `a new reader's first list ${o.personal_first_list_ms} ms (${o.personal_reader_follows} follows, ${o.personal_reader_likes} likes); like-minded over ${o.personal_candidates} candidates ${o.like_minded_build_ms} ms (${o.like_minded_build_cpu_ms} CPU ms)`,
    ],
    [
      'refresh, as configured',
      (o.refresh_by_feed as { feed: string; candidates: number; median_ms: number }[]).map((r) => `${r.feed} ${r.median_ms} ms (${r.candidates})`).join('; '),
    ],
    ['serve, anonymous', `${o.serve_rps} req/s, p50 ${o.serve_p50_ms} ms, p99 ${o.serve_p99_ms} ms`],
    [
      'serve, signed in',
      o.serve_auth_rps === null
        ? 'skipped'
        : `${o.serve_auth_rps} req/s, p50 ${o.serve_auth_p50_ms} ms, p99 ${o.serve_auth_p99_ms} ms (${pct(o.serve_auth_vs_anon)} of anonymous; ${o.serve_auth_readers} readers of ${o.serve_auth_subscribers} subscribers, ${o.serve_auth_mixes} mixes)`,
    ],
    ...Object.keys(o)
      .filter((k) => k.startsWith('serve_processes_'))
      .map((k): [string, string] => {
        const r = o[k] as ServeProcessesRun
        const auth =
          r.serve_auth_rps === null
            ? ''
            : `; signed in ${r.serve_auth_rps} req/s, p99 ${r.serve_auth_p99_ms} ms, ${r.serve_auth_cpu_ms_per_request} CPU ms/request`
        return [
          `serve, ${r.processes} process${r.processes > 1 ? 'es' : ''}`,
          `anonymous ${r.serve_rps} req/s, p99 ${r.serve_p99_ms} ms, ${r.serve_cpu_ms_per_request} CPU ms/request${auth}; requests ${r.per_process.map((p) => p.skeleton_requests).join(' + ')}`,
        ]
      }),
    [
      'serve, through an edge',
      o.serve_edge === null
        ? 'skipped'
        : (() => {
            const e = o.serve_edge as EdgeRun
            const auth =
              e.serve_auth_rps === null
                ? ''
                : `; signed in ${e.serve_auth_rps} req/s, p99 ${e.serve_auth_p99_ms} ms, ${e.edge_auth_cpu_ms_per_request} CPU ms/request (${e.readers_placed} readers placed)`
            return `anonymous ${e.serve_rps} req/s, p99 ${e.serve_p99_ms} ms, ${e.edge_cpu_ms_per_request} CPU ms/request${auth}; primary ${e.primary_cpu_pct}% / ${e.primary_auth_cpu_pct ?? '-'}% CPU meanwhile; RSS edge ${e.edge_rss_mb} MB, primary ${e.primary_rss_mb} MB`
          })(),
    ],
    ['bare Hono', `${o.bare_hono_rps} req/s, p50 ${o.bare_hono_p50_ms} ms, p99 ${o.bare_hono_p99_ms} ms (serve = ${pct(o.serve_vs_bare_hono)})`],
    [
      'memory',
      `main max RSS ${o.rss_mb} MB; ${o.ingest_rss_mb === null ? '' : `ingest ${o.ingest_rss_mb} MB; `}score workers ${JSON.stringify(o.score_worker_rss_mb)} MB (idle ${JSON.stringify(o.score_worker_idle_rss_mb)}); SQLite ${o.sqlite_mb} MB`,
    ],
    [
      'sandboxed agent',
      o.sandbox_posts_per_s === null
        ? 'skipped'
        : `${o.sandbox_posts_per_s} posts/s in calls of 100 (${o.sandbox_vs_same_agent} of the same agent called raw, ${o.sandbox_quickjs_same_agent_posts_per_s}/s; ${o.sandbox_vs_raw} of a trivial raw call, ${o.sandbox_quickjs_raw_posts_per_s}/s); ${o.sandbox_1000_posts_per_s}/s in calls of 1000 (${o.sandbox_vs_same_agent_1000})`,
    ],
  ]
  const w = Math.max(...rows.map((r) => r[0].length))
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')
}

const watchdog = setTimeout(() => {
  log(`ERROR: the benchmark did not finish within ${TIMEOUT_S} s; stopping`)
  void cleanup().finally(() => process.exit(2))
}, TIMEOUT_S * 1000)

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`)
    void cleanup().finally(() => process.exit(130))
  })
}

main().then(
  async (out) => {
    await cleanup()
    clearTimeout(watchdog)
    process.stderr.write(`\nSkysift benchmark\n${table(out)}\n\n`)
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0))
  },
  async (err) => {
    log(`ERROR: ${(err as Error)?.stack ?? err}`)
    await cleanup()
    clearTimeout(watchdog)
    process.exit(1)
  },
)

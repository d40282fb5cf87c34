/**
 * `node bench/scaling.ts`: ingest throughput with 1, 2 and 4 score-worker
 * processes on this machine, in two workloads:
 *
 *   standard  the static agents `npm run bench` registers (keyword and
 *             language instances of the example feeds and 50 subscriber
 *             mixes): cheap regular expressions
 *   heavy     the same plus one CPU-heavy static agent (bench/heavy-agent.ts,
 *             --agent-cost-us per post, default 2000: a small model)
 *
 * For each worker count, a fresh temp SQLite file and Redis prefix; the same
 * synthetic Jetstream file is replayed through the real chain (ReplaySource →
 * Ingester → `events` → N score-worker child processes (workers/score.ts) →
 * `store` → the one BatchWriter in this process), with the same static agent
 * instances registered as `npm run bench` uses (so every post is scored by
 * several agents). Two figures per run:
 *
 *   score_events_per_s       events / time until the last `events` job was
 *                            scored: what the score stage sustains
 *   end_to_end_events_per_s  events / time until the writer stored the last
 *                            batch: what one SQLite writer sustains behind it
 *
 * Progress goes to stderr; the last stdout line is one JSON object.
 *
 * Flags: --workers 1,2,4  --events N (60000)  --mixes M (50)  --seed S (1)
 *        --repeat R (1; the median run per worker count is reported)
 *        --agent-cost-us U (2000)  --profiles standard,heavy
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { EXAMPLE_FEEDS_FILE, readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { deleteQueueKeys, producerQueue, redisOptions } from '../src/contracts/queues.ts'
import { QUEUE } from '../src/contracts/jobs.ts'
import { redisAnswers } from '../src/redis-server.ts'
import { startIngest, startStore, type Running } from '../src/runtime.ts'
import type { AgentInstance } from '../src/score/host.ts'
import { InstanceRegistry } from '../src/score/instance-registry.ts'
import type { PrepareInput, PrepareResult } from './prepare.ts'
import { log, median, procCpuSeconds, round, runHelper, sleep, stopChild, waitFor } from './util.ts'
import { extraInstances, subscriberMixes } from './workload.ts'

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const SCORE_WORKER_ENTRY = here('../workers/score.ts')

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    workers: { type: 'string' },
    events: { type: 'string' },
    mixes: { type: 'string' },
    seed: { type: 'string' },
    repeat: { type: 'string' },
    'agent-cost-us': { type: 'string' },
    profiles: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (flags.help) {
  process.stderr.write(fs.readFileSync(here('./scaling.ts'), 'utf8').split('*/')[0] + '*/\n')
  process.exit(0)
}
const WORKERS = (flags.workers ?? '1,2,4').split(',').map(Number)
if (!WORKERS.every((n) => Number.isInteger(n) && n >= 1 && n <= 64)) throw new Error('--workers: a comma-separated list of counts from 1 to 64')
const EVENTS = Number(flags.events ?? 60_000)
const MIXES = Number(flags.mixes ?? 50)
const SEED = Number(flags.seed ?? 1)
const REPEAT = Number(flags.repeat ?? 1)
const COST_US = Number(flags['agent-cost-us'] ?? 2000)
const PROFILES = (flags.profiles ?? 'standard,heavy').split(',') as ('standard' | 'heavy')[]
if (!PROFILES.every((p) => p === 'standard' || p === 'heavy')) throw new Error('--profiles: standard and/or heavy')
const HEAVY_AGENT = here('./heavy-agent.ts')

const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'

interface RunResult {
  profile: string
  score_workers: number
  events_queued: number
  score_events_per_s: number
  end_to_end_events_per_s: number
  scored_s: number
  stored_s: number
  ingest_queued_s: number
  store_busy_pct: number
  worker_cpu_pct: number[]
  main_cpu_pct: number
  redis_cpu_pct: number
  /** CPU cost per event, robust to other load on the machine: score workers (all), the writer's transactions, the main process (ingest + writer + queue I/O) */
  score_cpu_us_per_event: number
  store_write_us_per_event: number
  main_cpu_us_per_event: number
}

async function redisCpuSeconds(): Promise<number> {
  const r = new Redis({ ...redisOptions(redisUrl), maxRetriesPerRequest: 1 })
  try {
    const info = await r.info('cpu')
    const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0)
    return v('used_cpu_user') + v('used_cpu_sys')
  } finally {
    r.disconnect()
  }
}

async function runOnce(file: string, workers: number, tmp: string, profile: 'standard' | 'heavy'): Promise<RunResult> {
  const prefix = `skysift-scaling-${process.pid}-${randomBytes(3).toString('hex')}`
  const dbPath = path.join(tmp, `scaling-${workers}-${prefix}.db`)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redisUrl,
    SKYSIFT_QUEUE_PREFIX: prefix,
    SKYSIFT_DB_PATH: dbPath,
    SKYSIFT_SOURCE: `replay:${file}#full`,
    SKYSIFT_FEEDS_FILE: EXAMPLE_FEEDS_FILE,
    SKYSIFT_LOG_LEVEL: 'warn',
    SKYSIFT_START_REDIS: 'never',
    SKYSIFT_AGENTS: profile === 'heavy' ? HEAVY_AGENT : '',
  }
  delete env.SKYSIFT_SERVICE_DID
  delete env.SKYSIFT_PUBLISHER_DID
  const logger = pino({ level: 'warn', base: { proc: 'scaling' } }, pino.destination(2))
  const ctx = await AppContext.create(readConfig(env), logger)
  const parts: Running[] = []
  const children: ChildProcess[] = []
  const eventsQueue = producerQueue(QUEUE.events, redisUrl, prefix)
  eventsQueue.on('error', () => {})
  try {
    // the same static instances `npm run bench` registers: default mixes, extra keyword/language options, subscriber mixes
    const wanted: AgentInstance[] = [
      ...ctx.feeds.flatMap((f) => f.defaults.entries.map((e) => e.inst)),
      ...extraInstances(ctx.host),
      ...subscriberMixes(ctx.host, ctx.feeds, MIXES).flatMap((m) => m.mix.entries.map((e) => e.inst)),
      ...(profile === 'heavy' ? [ctx.host.instance('bench-heavy', { costUs: COST_US })] : []),
    ]
    const staticInstances = [...new Map(wanted.filter((i) => !i.dynamic).map((i) => [i.key, i])).values()]
    await new InstanceRegistry(ctx.redis(), prefix, ctx.host, logger).register(staticInstances)

    const store = startStore(ctx)
    parts.push(store)
    const writes = { ms: 0 }
    const write = store.writer.write.bind(store.writer)
    store.writer.write = (b) => {
      const t = performance.now()
      try {
        return write(b)
      } finally {
        writes.ms += performance.now() - t
      }
    }
    for (let i = 0; i < workers; i++) children.push(fork(SCORE_WORKER_ENTRY, [], { env, stdio: ['ignore', 2, 2, 'ipc'] }))
    await waitFor(async () => (await eventsQueue.getWorkersCount()) >= workers, 60_000, `${workers} score workers to connect`, 100)
    // the workers load the instance set within their first seconds; give them that before the clock starts
    await sleep(1500)

    const stored = ctx.db.sqlite.prepare("SELECT value FROM counters WHERE name = 'events_stored'").pluck()
    const storedNow = () => Number(stored.get() ?? 0)
    const cpu0 = { main: process.cpuUsage(), kids: children.map((c) => procCpuSeconds(c.pid!) ?? 0), redis: await redisCpuSeconds() }
    const t0 = performance.now()
    const ing = startIngest(ctx)
    parts.push(ing)
    let tQueued: number | null = null
    let tScored: number | null = null
    let tStored: number | null = null
    void ing.done.then(() => (tQueued = performance.now()))
    let last = 0
    while (tStored === null) {
      await sleep(25)
      const now = performance.now()
      if (tQueued !== null && tScored === null) {
        const c = await eventsQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')
        if (c.waiting + c.active + c.delayed + c.prioritized === 0) tScored = performance.now()
      }
      if (tQueued !== null && storedNow() >= ing.ingester.stats.queued) {
        tScored ??= performance.now()
        tStored = performance.now()
      }
      if (now - last > 3000) {
        last = now
        log(`  ${workers} worker(s), ${round((now - t0) / 1000, 1)} s: queued ${ing.ingester.stats.queued}, stored ${storedNow()}`)
      }
      if (now - t0 > 600_000) throw new Error('run did not finish within 10 minutes')
    }
    const queued = ing.ingester.stats.queued
    const scoredS = (tScored! - t0) / 1000
    const storedS = (tStored - t0) / 1000
    const main = process.cpuUsage(cpu0.main)
    const redisS = (await redisCpuSeconds()) - cpu0.redis
    const workerCpuS = children.map((c, i) => (procCpuSeconds(c.pid!) ?? 0) - cpu0.kids[i])
    return {
      profile,
      score_workers: workers,
      events_queued: queued,
      score_events_per_s: Math.round(queued / scoredS),
      end_to_end_events_per_s: Math.round(queued / storedS),
      scored_s: round(scoredS, 2),
      stored_s: round(storedS, 2),
      ingest_queued_s: round((tQueued! - t0) / 1000, 2),
      store_busy_pct: round((100 * writes.ms) / (storedS * 1000)),
      worker_cpu_pct: workerCpuS.map((c) => round((100 * c) / storedS)),
      main_cpu_pct: round((100 * (main.user + main.system)) / 1e6 / storedS),
      redis_cpu_pct: round((100 * redisS) / storedS),
      score_cpu_us_per_event: round((workerCpuS.reduce((a, b) => a + b, 0) * 1e6) / queued, 1),
      store_write_us_per_event: round((writes.ms * 1000) / queued, 1),
      main_cpu_us_per_event: round((main.user + main.system) / queued, 1),
    }
  } finally {
    for (const p of parts.reverse()) await p.stop().catch(() => {})
    await Promise.all(children.map((c) => stopChild(c, 5000)))
    await eventsQueue.close().catch(() => {})
    await ctx.close()
    await deleteQueueKeys(redisUrl, prefix).catch(() => {})
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) fs.rmSync(f, { force: true })
  }
}

async function main() {
  if (!(await redisAnswers(redisUrl, 2000))) throw new Error(`Redis is not reachable at ${redisUrl}`)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-scaling-'))
  try {
    const file = path.join(tmp, 'events.jsonl')
    log(`generating ${EVENTS} synthetic events…`)
    const prep = await runHelper<PrepareResult>(here('./prepare.ts'), { file, events: EVENTS, seed: SEED } satisfies PrepareInput, 300_000)
    const loadBefore = round(os.loadavg()[0], 2)
    if (loadBefore > 1) log(`WARNING: load average ${loadBefore} before the runs; other work on this machine skews the figures`)
    const runs: RunResult[] = []
    const speedup: Record<string, { score: Record<number, number>; end_to_end: Record<number, number> }> = {}
    for (const profile of PROFILES) {
      const mine: RunResult[] = []
      for (const w of WORKERS) {
        const tries: RunResult[] = []
        for (let r = 0; r < REPEAT; r++) {
          log(`run (${profile}): ${w} score worker process(es)${REPEAT > 1 ? ` (${r + 1}/${REPEAT})` : ''}`)
          const res = await runOnce(file, w, tmp, profile)
          log(
            `  → score ${res.score_events_per_s}/s, end to end ${res.end_to_end_events_per_s}/s; workers CPU ${JSON.stringify(res.worker_cpu_pct)}%, main ${res.main_cpu_pct}%, store busy ${res.store_busy_pct}%`,
          )
          tries.push(res)
        }
        const mid = median(tries.map((t) => t.score_events_per_s))
        mine.push(tries.find((t) => t.score_events_per_s === mid) ?? tries[0])
      }
      const base = mine[0]
      speedup[profile] = {
        score: Object.fromEntries(mine.map((r) => [r.score_workers, round(r.score_events_per_s / base.score_events_per_s, 2)])),
        end_to_end: Object.fromEntries(mine.map((r) => [r.score_workers, round(r.end_to_end_events_per_s / base.end_to_end_events_per_s, 2)])),
      }
      runs.push(...mine)
    }
    // capacity from CPU cost (what this machine would do with no other load): the writer is one thread; scoring spreads over cores
    const capacity: Record<
      string,
      { ingest_and_store_process_limit_events_per_s: number; store_transactions_limit_events_per_s: number; score_events_per_s_per_core: number }
    > = {}
    for (const profile of PROFILES) {
      const mine = runs.filter((r) => r.profile === profile)
      capacity[profile] = {
        ingest_and_store_process_limit_events_per_s: Math.round(1e6 / median(mine.map((r) => r.main_cpu_us_per_event))),
        store_transactions_limit_events_per_s: Math.round(1e6 / median(mine.map((r) => r.store_write_us_per_event))),
        score_events_per_s_per_core: Math.round(1e6 / median(mine.map((r) => r.score_cpu_us_per_event))),
      }
    }
    return {
      events: prep.lines,
      cpus: os.availableParallelism(),
      loadavg_before: loadBefore,
      loadavg_after: round(os.loadavg()[0], 2),
      node: process.version,
      heavy_agent_cost_us: COST_US,
      decode_events_per_s: Math.round(prep.decodeEventsPerS),
      runs,
      speedup,
      capacity,
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().then(
  (out) => process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0)),
  (err) => {
    log(`ERROR: ${(err as Error)?.stack ?? err}`)
    process.exit(1)
  },
)

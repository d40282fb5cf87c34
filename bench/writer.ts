/**
 * The store writer alone: synthetic Jetstream events, decoded and scored by
 * the bench's static agent instances exactly as a score worker would, then
 * applied to a fresh SQLite file by BatchWriter, without Redis or BullMQ.
 *
 *   node bench/writer.ts [--events N] [--batch B] [--group G] [--prefill P] [--db FILE]
 *                        [--checkpointer] [--pragma 'wal_autocheckpoint=0' …]
 *
 * --batch  events per store job (the ingester's SKYSIFT_BATCH_SIZE)
 * --group  store jobs applied per SQLite transaction (what startStore drains at once)
 * --prefill first stores P posts (not timed, bench/store-gen.ts), so the indexes
 *          are the size of a real window rather than an empty file
 * --checkpointer  checkpoint on a thread of its own, as startStore does
 * --pragma  extra PRAGMAs on the writer's connection (experiments)
 * --through-redis  the store stage as `npm start` runs it: the jobs are first
 *          queued in Redis (untimed, under a prefix of their own, removed at
 *          the end), then startStore takes them (BullMQ, grouped
 *          transactions, checkpointer, retention) with nothing else in the
 *          process; also reports the process's CPU seconds per 100k events.
 *          What this process can do is a ceiling for the whole chain, whose
 *          every event passes through it.
 *
 * Prints one JSON line: events/s, ms per transaction, file size.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { EXAMPLE_FEEDS_FILE, readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { decodeJetstream } from '../src/ingest/jetstream.ts'
import { syntheticEvents } from '../src/ingest/synthetic.ts'
import type { IngestEvent } from '../src/contracts/events.ts'
import { scoreBatch } from '../src/score/score-stage.ts'
import type { AgentInstance } from '../src/score/host.ts'
import { startCheckpointer } from '../src/store/checkpointer.ts'
import { openDb } from '../src/store/db.ts'
import { BatchWriter } from '../src/store/writer.ts'
import type { StoreBatch } from '../src/contracts/jobs.ts'
import { deleteQueueKeys, producerQueue } from '../src/contracts/queues.ts'
import { QUEUE } from '../src/contracts/jobs.ts'
import { startStore } from '../src/runtime.ts'
import { generateStore } from './store-gen.ts'
import { fileSize, mb, round } from './util.ts'
import { extraInstances } from './workload.ts'

export interface WriterBenchInput {
  events: number
  batch: number
  group: number
  prefill: number
  db?: string
  seed?: number
  /** extra PRAGMAs to run on the connection first (experiments) */
  pragmas?: string[]
  /** checkpoint on a thread of its own, as startStore does */
  checkpointer?: boolean
  /** the store stage taking the jobs from Redis (startStore) instead of BatchWriter called directly */
  throughRedis?: boolean
}

export interface WriterBenchResult {
  events: number
  batch: number
  group: number
  prefill_posts: number
  static_agents_per_post: number
  writer_events_per_s: number
  /** null with --through-redis (the store stage groups jobs as they come) */
  transactions: number | null
  ms_per_transaction: number | null
  ms_per_job: number
  sqlite_mb: number
  /** this process's CPU (user + system, the checkpoint thread's too) per 100k events stored, while timed */
  cpu_s_per_100k_events?: number
}

/** The static instances the bench scores every post with (the feeds' defaults and a few more). */
export function benchInstances(ctx: AppContext): AgentInstance[] {
  const all = [...ctx.feeds.flatMap((f) => f.defaults.entries.map((e) => e.inst)), ...extraInstances(ctx.host)]
  return [...new Map(all.filter((i) => !i.dynamic).map((i) => [i.key, i])).values()]
}

/** Decoded and scored store jobs for `count` synthetic events. */
export async function storeJobs(
  ctx: AppContext,
  instances: AgentInstance[],
  count: number,
  batch: number,
  seed: number,
  startTimeUs?: number,
): Promise<StoreBatch[]> {
  const jobs: StoreBatch[] = []
  let events: IngestEvent[] = []
  let n = 0
  let first = 0
  let time = 0
  const flush = async () => {
    if (!events.length) return
    jobs.push(await scoreBatch(ctx.host, instances, { id: `w${seed}-${first}-${n}`, source: 'bench', events, eventTime: time }))
    events = []
  }
  for (const ev of syntheticEvents({ count, seed, ...(startTimeUs ? { startTimeUs } : {}) })) {
    n++
    const d = decodeJetstream(JSON.stringify(ev))
    if (!d.ok || !d.event) continue
    if (!events.length) first = n
    events.push(d.event)
    time = Math.floor(d.cursor / 1000)
    if (events.length >= batch) await flush()
  }
  await flush()
  return jobs
}

export async function writerBench(input: WriterBenchInput): Promise<WriterBenchResult> {
  const dir = input.db ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-writer-'))
  const file = input.db ?? path.join(dir!, 'w.db')
  const logger = pino({ level: 'warn' }, pino.destination(2))
  const ctx = new AppContext(readConfig({}, { dbPath: file, feedsFile: EXAMPLE_FEEDS_FILE }), logger)
  const instances = benchInstances(ctx)
  const db = openDb(file)
  for (const p of input.pragmas ?? []) db.sqlite.pragma(p)
  const cp = input.checkpointer ? startCheckpointer(db.sqlite, logger) : null
  try {
    const writer = new BatchWriter(db.sqlite)
    const apply = (jobs: StoreBatch[]) => {
      for (const r of writer.writeGroup(jobs)) if (!r.ok) throw r.error
    }
    if (input.prefill > 0) {
      // older posts (the last two days, ending an hour ago), so the timed events are the newest
      await generateStore(writer, ctx.host, instances, { posts: input.prefill, hours: 48, now: Date.now() - 3_600_000, seed: (input.seed ?? 1) + 1000 })
      db.sqlite.pragma('wal_checkpoint(TRUNCATE)')
    }
    const jobs = await storeJobs(ctx, instances, input.events, input.batch, input.seed ?? 1)
    const total = jobs.reduce((s, j) => s + j.events.length, 0)
    if (input.throughRedis) {
      db.close()
      await cp?.stop()
      return await throughRedis(file, jobs, total, input, instances.length)
    }
    let txs = 0
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < jobs.length; i += input.group) {
      const g = jobs.slice(i, i + input.group)
      if (input.group === 1) writer.write(g[0])
      else apply(g)
      txs++
      // between transactions the event loop turns, as it does between store jobs (the checkpointer's messages)
      if (cp) await new Promise((r) => setImmediate(r))
    }
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    return {
      events: total,
      batch: input.batch,
      group: input.group,
      prefill_posts: input.prefill,
      static_agents_per_post: instances.length,
      writer_events_per_s: Math.round(total / (ms / 1000)),
      transactions: txs,
      ms_per_transaction: round(ms / txs, 2),
      ms_per_job: round(ms / jobs.length, 2),
      sqlite_mb: mb(fileSize(file) + fileSize(`${file}-wal`)),
      cpu_s_per_100k_events: round(((cpu.user + cpu.system) / 1e6) * (100_000 / total), 3),
    }
  } finally {
    await cp?.stop()
    if (db.sqlite.open) db.close()
    await ctx.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** The store stage alone (startStore, as `npm start` runs it) taking `jobs` from Redis, timed until all are stored. */
async function throughRedis(file: string, jobs: StoreBatch[], total: number, input: WriterBenchInput, agents: number): Promise<WriterBenchResult> {
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
  const prefix = `skysift-writer-bench-${process.pid}-${randomBytes(3).toString('hex')}`
  const ctx = new AppContext(
    readConfig({}, { dbPath: file, feedsFile: EXAMPLE_FEEDS_FILE, redisUrl, queuePrefix: prefix }),
    pino({ level: 'warn' }, pino.destination(2)),
  )
  const queue = producerQueue<StoreBatch>(QUEUE.store, redisUrl, prefix)
  let store: ReturnType<typeof startStore> | null = null
  try {
    for (let i = 0; i < jobs.length; i += 50) await queue.addBulk(jobs.slice(i, i + 50).map((j) => ({ name: 'batch', data: j, opts: { jobId: j.id } })))
    const stored = ctx.db.sqlite.prepare(`SELECT value FROM counters WHERE name = 'events_stored'`).pluck()
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    store = startStore(ctx)
    while (Number(stored.get() ?? 0) < total) await new Promise((r) => setTimeout(r, 5))
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(c0)
    return {
      events: total,
      batch: input.batch,
      group: 0,
      prefill_posts: input.prefill,
      static_agents_per_post: agents,
      writer_events_per_s: Math.round(total / (ms / 1000)),
      transactions: null,
      ms_per_transaction: null,
      ms_per_job: round(ms / jobs.length, 2),
      sqlite_mb: mb(fileSize(file) + fileSize(`${file}-wal`)),
      cpu_s_per_100k_events: round((cpu.user + cpu.system) / 1e6 / (total / 100_000), 2),
    }
  } finally {
    await store?.stop()
    await queue.close()
    await ctx.close()
    await deleteQueueKeys(redisUrl, prefix)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      events: { type: 'string' },
      batch: { type: 'string' },
      group: { type: 'string' },
      prefill: { type: 'string' },
      db: { type: 'string' },
      seed: { type: 'string' },
      pragma: { type: 'string', multiple: true },
      checkpointer: { type: 'boolean' },
      'through-redis': { type: 'boolean' },
    },
  })
  const r = await writerBench({
    events: Number(values.events ?? 200_000),
    batch: Number(values.batch ?? 500),
    group: Number(values.group ?? 1),
    prefill: Number(values.prefill ?? 0),
    db: values.db,
    seed: Number(values.seed ?? 1),
    pragmas: values.pragma,
    checkpointer: values.checkpointer,
    throughRedis: values['through-redis'],
  })
  console.log(JSON.stringify(r))
}

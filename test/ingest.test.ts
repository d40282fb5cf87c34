import fs from 'node:fs'
import path from 'node:path'
import type { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Ingester } from '../src/ingest/ingester.ts'
import { ReplaySource } from '../src/ingest/replay-source.ts'
import { syntheticJsonl } from '../src/ingest/synthetic.ts'
import { silentLogger } from '../src/logger.ts'
import { producerQueue } from '../src/contracts/queues.ts'
import { QUEUE, type EventsJob } from '../src/contracts/jobs.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { queuePrefix, REDIS_URL, tempDir, waitFor } from './support/resources.ts'

/** Every event id in the queue's jobs, in order of their first line. */
async function queuedEvents(q: Queue<EventsJob>): Promise<number> {
  const jobs = await q.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed'])
  return jobs.reduce((n, j) => n + j.data.events.length, 0)
}

describe('Ingester (replay → real Redis, cursor in real SQLite)', () => {
  let dir: string
  let db: Db
  let prefix: string
  const cleanups: (() => unknown)[] = []
  let file: string
  const LINES = 3000

  beforeEach(() => {
    const t = tempDir()
    dir = t.dir
    const p = queuePrefix()
    prefix = p.prefix
    cleanups.push(t.cleanup, p.cleanup)
    db = openDb(path.join(dir, 'skysift.db'))
    file = path.join(dir, 'events.jsonl')
    fs.writeFileSync(file, syntheticJsonl({ count: LINES, seed: 7 }))
  })
  afterEach(async () => {
    db.close()
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  const ingester = (queue: Queue<EventsJob>, highWater = 1000) =>
    new Ingester(new ReplaySource(file), queue, db.sqlite, silentLogger, { batchSize: 200, highWater, enqueueTimeoutMs: 500 })
  const savedCursor = () => db.sqlite.prepare('SELECT cursor FROM cursors').pluck().get() as string | undefined

  it('queues every decoded event in batches, saves the cursor, and resumes without re-reading', async () => {
    const q = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, prefix)
    cleanups.push(() => q.close())
    const ing = ingester(q)
    await ing.start()
    expect(ing.stats.received).toBe(LINES)
    expect(ing.stats.rejected).toBe(0)
    expect(savedCursor()).toBe(String(LINES))
    const queued = await queuedEvents(q)
    expect(queued).toBe(ing.stats.queued)
    expect(queued).toBeGreaterThan(LINES * 0.8) // identity events and unknown kinds are not queued
    const jobs = await q.getJobs(['waiting'])
    expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length)
    // a restart reads nothing twice
    const again = ingester(q)
    await again.start()
    expect(again.stats.received).toBe(0)
    expect(await queuedEvents(q)).toBe(queued)
  })

  it('keeps malformed lines for inspection and goes on', async () => {
    const lines = fs.readFileSync(file, 'utf8').split('\n')
    lines.splice(
      10,
      0,
      '{"kind":"commit"',
      'garbage',
      JSON.stringify({
        did: 'did:plc:x',
        time_us: 1,
        kind: 'commit',
        commit: { operation: 'create', collection: 'app.bsky.feed.post', rkey: 'a', cid: 'bafyreiabcdefgh', record: { text: 7 } },
      }),
    )
    fs.writeFileSync(file, lines.join('\n'))
    const q = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, prefix)
    cleanups.push(() => q.close())
    const ing = ingester(q)
    await ing.start()
    expect(ing.stats.rejected).toBe(3)
    const reasons = db.sqlite.prepare('SELECT reason FROM rejected_events ORDER BY id').pluck().all()
    expect(reasons).toEqual(['not JSON', 'not JSON', 'post text is not a string'])
    expect(savedCursor()).toBe(String(LINES + 3))
  })

  it('pauses reading while the queue is over its high-water mark', async () => {
    const q = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, prefix)
    cleanups.push(() => q.close())
    const ing = ingester(q, 3)
    const done = ing.start()
    // nobody consumes: reading must stop with about high-water + 1 jobs waiting
    await waitFor(async () => (await q.getWaitingCount()) >= 4, 'queue to fill')
    await new Promise((r) => setTimeout(r, 500))
    expect(await q.getWaitingCount()).toBe(4)
    expect(ing.stats.received).toBeLessThan(LINES)
    // drain the queue: reading resumes and finishes
    const drain = setInterval(() => void q.drain(), 50)
    await done
    clearInterval(drain)
    expect(ing.stats.received).toBe(LINES)
    expect(savedCursor()).toBe(String(LINES))
  })

  it('counts the store queue towards the mark: a stopped store writer holds reading back, though the events queue is drained', async () => {
    const q = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, prefix)
    const store = producerQueue<EventsJob>(QUEUE.store, REDIS_URL, prefix)
    cleanups.push(
      () => q.close(),
      () => store.close(),
    )
    const ing = new Ingester(new ReplaySource(file), q, db.sqlite, silentLogger, { batchSize: 200, highWater: 3, enqueueTimeoutMs: 500, downstream: [store] })
    const done = ing.start()
    // a score stage that keeps the events queue empty, moving every job on to a store queue nobody takes from
    let moving = true
    const mover = (async () => {
      while (moving) {
        const jobs = await q.getJobs(['waiting'])
        for (const j of jobs) {
          await store.add('batch', j.data, { jobId: j.id })
          await j.remove()
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    await waitFor(async () => (await store.getWaitingCount()) >= 4, 'store queue to fill')
    await new Promise((r) => setTimeout(r, 500))
    expect(await q.getWaitingCount()).toBe(0)
    expect(await store.getWaitingCount()).toBeLessThanOrEqual(5)
    expect(ing.stats.received).toBeLessThan(LINES)
    // the store writer drains its queue: reading resumes and finishes
    const drain = setInterval(() => void store.drain(), 50)
    await done
    moving = false
    await mover
    clearInterval(drain)
    expect(ing.stats.received).toBe(LINES)
    expect(savedCursor()).toBe(String(LINES))
  })

  it('reads again what an emptied Redis lost, from the oldest batch not stored yet', async () => {
    const redis = new Redis(REDIS_URL)
    cleanups.push(() => redis.disconnect())
    const q = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, prefix)
    cleanups.push(() => q.close())
    const mk = () =>
      new Ingester(new ReplaySource(file), q, db.sqlite, silentLogger, { batchSize: 200, highWater: 1000, enqueueTimeoutMs: 500, epoch: { redis, prefix } })
    const firstLine = (id: string) => Number(/_(\d+)_\d+_\d+$/.exec(id)![1])
    const waiting = async () => (await q.getJobs(['waiting'])).sort((a, b) => firstLine(a.id!) - firstLine(b.id!))
    const pending = () => db.sqlite.prepare('SELECT count(*) FROM pending_batches').pluck().get() as number
    await mk().start()
    const jobs = await waiting()
    expect(pending()).toBe(jobs.length)
    // the store applies the first five batches; the rest are still in Redis when it is restarted without persistence
    const writer = new BatchWriter(db.sqlite)
    for (const j of jobs.slice(0, 5)) writer.write({ id: j.id!, events: j.data.events, scores: [], eventTime: j.data.eventTime })
    expect(pending()).toBe(jobs.length - 5)
    const keys = await redis.keys(`${prefix}:*`)
    await redis.del(...keys)
    const again = mk()
    await again.start()
    expect(again.stats.rewinds).toBe(1)
    expect(savedCursor()).toBe(String(LINES))
    // exactly the lost batches are queued again: the same boundaries, under the new Redis epoch's ids
    const bounds = (id: string) => /_(\d+_\d+_\d+)$/.exec(id)![1]
    const again1 = await waiting()
    expect(again1.map((j) => bounds(j.id!))).toEqual(jobs.slice(5).map((j) => bounds(j.id!)))
    expect(again1.every((j) => !jobs.some((old) => old.id === j.id))).toBe(true)
    expect(pending()).toBe(again1.length)
    // a Redis that kept its data is no reason to read anything again
    const third = mk()
    await third.start()
    expect(third.stats.rewinds).toBe(0)
    expect(third.stats.received).toBe(0)
    // a batch recorded as pending whose cursor was never saved (the ingest died in between) is read again from
    // the cursor anyway: a restart forgets it, and it can never send a later rewind further back
    db.sqlite.prepare("INSERT INTO pending_batches (id, source, resume_from, at) VALUES ('ev_never_saved', ?, ?, 0)").run(`replay:${file}`, String(LINES))
    await mk().start()
    expect(db.sqlite.prepare("SELECT count(*) FROM pending_batches WHERE id = 'ev_never_saved'").pluck().get()).toBe(0)
  })

  it('with Redis unreachable, holds the batch, saves no cursor, and a restart reads it all again', async () => {
    const dead = producerQueue<EventsJob>(QUEUE.events, 'redis://127.0.0.1:1', prefix)
    dead.on('error', () => {})
    const ing = ingester(dead)
    const done = ing.start()
    await waitFor(() => ing.stats.redisErrors >= 2, 'redis errors')
    expect(ing.stats.received).toBeLessThanOrEqual(400) // stopped reading at the first full batch
    await ing.stop()
    await done
    await dead.close().catch(() => {})
    expect(savedCursor()).toBeUndefined()

    const q = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, prefix)
    cleanups.push(() => q.close())
    const again = ingester(q)
    await again.start()
    expect(again.stats.received).toBe(LINES)
    expect(savedCursor()).toBe(String(LINES))
  })
})

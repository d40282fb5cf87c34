/**
 * A restart next to a Redis that keeps nothing on disk (the Redis `npm start`
 * launches for itself) is the common case: when no batch was waiting, nothing
 * was lost, and the ingest says nothing about it at warning level.
 */
import fs from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { Ingester } from '../src/ingest/ingester.ts'
import { ReplaySource } from '../src/ingest/replay-source.ts'
import { syntheticJsonl } from '../src/ingest/synthetic.ts'
import { producerQueue } from '../src/contracts/queues.ts'
import { QUEUE, type EventsJob } from '../src/contracts/jobs.ts'
import { openDb } from '../src/store/db.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { queuePrefix, REDIS_URL, tempDir } from './support/resources.ts'

describe('restarting next to an emptied Redis with nothing waiting', () => {
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('logs no warning', async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const db = openDb(path.join(t.dir, 'skysift.db'))
    cleanups.push(() => db.close())
    const file = path.join(t.dir, 'events.jsonl')
    fs.writeFileSync(file, syntheticJsonl({ count: 500, seed: 3 }))
    const redis = new Redis(REDIS_URL)
    cleanups.push(() => redis.disconnect())
    const queue = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, q.prefix)
    cleanups.push(() => queue.close())
    const lines: { level: number; msg: string }[] = []
    const log = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, cb) => (lines.push(JSON.parse(String(chunk))), cb()) }))
    const mk = () =>
      new Ingester(new ReplaySource(file), queue, db.sqlite, log, {
        batchSize: 200,
        highWater: 1000,
        enqueueTimeoutMs: 500,
        epoch: { redis, prefix: q.prefix },
      })

    await mk().start()
    // the store writer takes every batch, then Redis restarts empty
    const writer = new BatchWriter(db.sqlite)
    for (const j of await queue.getJobs(['waiting'])) writer.write({ id: j.id!, events: j.data.events, scores: [], eventTime: j.data.eventTime })
    await redis.del(...(await redis.keys(`${q.prefix}:*`)))
    lines.length = 0

    const again = mk()
    await again.start()
    expect(again.stats.rewinds).toBe(0)
    expect(lines.filter((l) => l.level >= 40)).toEqual([])
  })
})

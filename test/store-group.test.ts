import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { producerQueue } from '../src/contracts/queues.ts'
import { QUEUE } from '../src/contracts/jobs.ts'
import { startStore, type Running } from '../src/runtime.ts'
import type { StoreBatch } from '../src/contracts/jobs.ts'
import { postEvent } from './support/builders.ts'
import { queuePrefix, REDIS_URL, tempDir, testConfig, waitFor } from './support/resources.ts'

describe('the store stage takes waiting jobs together', () => {
  let ctx: AppContext
  const cleanups: (() => unknown)[] = []

  beforeAll(() => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    ctx = new AppContext(testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix }), silentLogger)
  })
  afterAll(async () => {
    await ctx.close()
    for (const c of cleanups.reverse()) await c()
  })

  it('stores the good jobs of a group, fails a malformed one for good and retries a failing one alone', async () => {
    const queue = producerQueue<StoreBatch>(QUEUE.store, REDIS_URL, ctx.config.queuePrefix)
    cleanups.push(() => queue.close())
    const good = Array.from({ length: 10 }, (_, i) => postEvent({ text: `good ${i}` }))
    const failing = { ...postEvent({ text: 'x' }), text: null as unknown as string }
    // queued before the store stage starts, so the first job finds the others waiting
    for (let i = 0; i < 5; i++)
      await queue.add('batch', { id: `g${i}`, events: good.slice(2 * i, 2 * i + 2), scores: [], eventTime: Date.now() }, { jobId: `g${i}` })
    await queue.add('batch', { id: 'bad' } as unknown as StoreBatch, { jobId: 'bad' })
    await queue.add(
      'batch',
      { id: 'f', events: [failing], scores: [], eventTime: Date.now() },
      { jobId: 'f', attempts: 2, backoff: { type: 'fixed', delay: 10 } },
    )
    const store: Running & { writer: { writeGroup: (b: StoreBatch[]) => unknown } } = startStore(ctx)
    const groups: number[] = []
    const writeGroup = store.writer.writeGroup.bind(store.writer)
    store.writer.writeGroup = (b) => {
      groups.push(b.length)
      return writeGroup(b)
    }
    cleanups.unshift(() => store.stop())
    const posts = () => ctx.db.sqlite.prepare('SELECT count(*) FROM posts').pluck().get() as number
    await waitFor(async () => posts() === 10 && (await queue.getFailedCount()) === 2, 'good jobs stored, bad ones failed')
    expect(await queue.getCompletedCount()).toBe(5)
    expect((await queue.getJob('bad'))?.failedReason).toBe('malformed store job')
    const f = await queue.getJob('f')
    expect(f?.attemptsMade).toBe(2)
    expect(Math.max(...groups)).toBeGreaterThan(1)
    expect(ctx.db.sqlite.prepare("SELECT value FROM counters WHERE name = 'events_stored'").pluck().get()).toBe(10)
  })
})

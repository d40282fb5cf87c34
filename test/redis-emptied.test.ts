/**
 * Redis emptied (restarted without persistence, flushed) after a replay was
 * read to the end, while every batch still waited in it: the running ingest
 * notices on its own and reads the lost batches again, and the store ends
 * with every event, with no restart of anything.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { syntheticJsonl } from '../src/ingest/synthetic.ts'
import { silentLogger } from '../src/logger.ts'
import { deleteQueueKeys } from '../src/contracts/queues.ts'
import { startIngest, startScore, startStore, type Running } from '../src/runtime.ts'
import { queuePrefix, REDIS_URL, tempDir, testConfig, waitFor } from './support/resources.ts'

describe('Redis emptied after a replay was read to the end', () => {
  const cleanups: (() => unknown)[] = []
  const parts: Running[] = []
  afterAll(async () => {
    for (const p of parts.reverse()) await p.stop()
    for (const c of cleanups.reverse()) await c()
  })

  it('is noticed by the running ingest, which reads the lost batches again: everything is stored, nothing restarted', async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const file = path.join(t.dir, 'events.jsonl')
    fs.writeFileSync(file, syntheticJsonl({ count: 6000, seed: 11 }))
    const ctx = new AppContext(
      testConfig({
        dbPath: path.join(t.dir, 'skysift.db'),
        queuePrefix: q.prefix,
        source: { kind: 'replay', path: file, pace: 'full' },
        batchSize: 250,
        queueHighWater: 10_000,
      }),
      silentLogger,
    )
    cleanups.push(() => ctx.close())
    const count = (sql: string) => Number(ctx.db.sqlite.prepare(sql).pluck().get() ?? 0)
    const stored = () => count(`SELECT value FROM counters WHERE name = 'events_stored'`)

    // no store writer yet: every batch the ingest queued waits in Redis
    parts.push(startScore(ctx))
    const ingest = startIngest(ctx)
    parts.push(ingest)
    await ingest.done
    const { queued, batches } = { ...ingest.ingester.stats }
    expect(queued).toBeGreaterThan(5000)
    expect(count('SELECT count(*) FROM pending_batches')).toBe(batches)

    // Redis comes back empty: the epoch key and every job are gone
    expect(await deleteQueueKeys(REDIS_URL, q.prefix)).toBeGreaterThan(0)
    const emptiedAt = Date.now()
    parts.push(startStore(ctx))
    // docs/operations.md: noticed within a second while running (the watcher looks 4 times a second)
    await waitFor(() => ingest.ingester.stats.rewinds === 1, 'the ingest to notice the emptied Redis', 5000, 20)
    const noticedMs = Date.now() - emptiedAt
    await waitFor(() => stored() >= queued && count('SELECT count(*) FROM pending_batches') === 0, 'every batch stored', 60_000, 100)
    // @NOTE a batch a worker held when Redis was emptied may be finished by it and stored again when read again
    // (the writer is idempotent; the counter counts applications): at most what the workers held at once
    expect(stored()).toBeGreaterThanOrEqual(queued)
    expect(stored()).toBeLessThanOrEqual(queued + 4 * 250)
    expect(ingest.ingester.stats.rewinds).toBe(1)
    expect(ingest.ingester.stats.queued).toBe(2 * queued)
    expect(count('SELECT count(*) FROM posts')).toBeGreaterThan(300)
    expect(noticedMs).toBeLessThan(5000)
  }, 90_000)
})

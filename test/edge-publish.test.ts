/**
 * A primary publishing for edge nodes (SKYSIFT_EDGE_PUBLISH): what it puts
 * in Redis (contracts/edge.ts) for an edge to serve from, and what it does
 * with what edges send back, with a real SQLite file and Redis.
 */
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import { EDGE_GROUP, edgeKeys, READER_EXCLUDED_FIELD, readerFeedField, type EdgeSnapshot } from '../src/contracts/edge.ts'
import { deleteQueueKeys } from '../src/contracts/queues.ts'
import type { Feed } from '../src/feeds.ts'
import { CLAIM_IDLE_MS, type EdgePublisher } from '../src/feed/edge-publisher.ts'
import type { FeedService } from '../src/feed/service.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { ReaderStore } from '../src/store/readers.ts'
import { UsageRepository } from '../src/store/usage.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent, tid } from './support/builders.ts'
import { queuePrefix, REDIS_URL, tempDir, testConfig, waitFor } from './support/resources.ts'

const did = (name: string) => `did:plc:${name.padEnd(24, 'x')}`
const [reader, other, blocked, shy] = ['reader', 'other', 'blocked', 'shy'].map(did)

describe('a primary publishing for edge nodes (real SQLite and Redis)', () => {
  const cleanups: (() => unknown)[] = []
  let ctx: AppContext
  let feeds: FeedService
  let edge: EdgePublisher
  let feed: Feed
  let redis: Redis
  let keys: ReturnType<typeof edgeKeys>
  let prefix: string
  let writer: BatchWriter
  let batch = 0
  const write = (events: IngestEvent[]) => writer.write({ id: `b${++batch}`, events, scores: [], eventTime: Date.now() })
  const posts: PostEvent[] = [
    ...Array.from({ length: 6 }, (_, i) => postEvent({ author: other, minutesAgo: 1 + i, text: `post ${i}` })),
    ...Array.from({ length: 3 }, (_, i) => postEvent({ author: blocked, minutesAgo: 10 + i, text: `blocked ${i}` })),
  ]
  const snapshot = async (id: string | number | null | false): Promise<EdgeSnapshot | null> => {
    if (!id) return null
    const json = await redis.get(keys.snapshot(Number(id)))
    return json ? (JSON.parse(json) as EdgeSnapshot) : null
  }
  /** Waits until the reader's placement on `feed` names another snapshot than `before`; returns its id. */
  const placedAnew = (before: string | null, what: string) =>
    waitFor(
      async () => {
        const id = await redis.hget(keys.reader(reader), readerFeedField(feed.uri))
        return id !== before && id
      },
      what,
      10_000,
    )
  const changes = async () =>
    (await redis.xrange(keys.changes, '-', '+')).map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 ? [] : [[v, f[i + 1]]]))))

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    prefix = q.prefix
    cleanups.push(t.cleanup, q.cleanup)
    ctx = new AppContext(testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, edgePublish: true, backfillConcurrency: 0 }), silentLogger)
    writer = new BatchWriter(ctx.db.sqlite)
    write(posts)
    const served = createServeApp(ctx)
    feeds = served.feeds
    edge = served.edge!
    cleanups.push(() => ctx.close(), served.close)
    feed = ctx.feeds[0]
    keys = edgeKeys(q.prefix)
    redis = new Redis(REDIS_URL)
    cleanups.push(() => redis.disconnect())
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('publishes every feed’s anonymous pointer, the snapshot it names, and meta', async () => {
    const id = await waitFor(() => redis.hget(keys.anon, feed.uri), 'the anonymous pointer', 10_000)
    const snap = await snapshot(id)
    expect(snap).not.toBeNull()
    // the items an edge serves are the page the primary serves anonymous readers
    const page = feeds.skeleton(feed, null, 100)
    expect(snap!.items.map((i) => i[0])).toEqual(page.feed.map((i) => i.post))
    expect(snap!.items.map((i) => i[1])).toEqual(page.feed.map((i) => i.feedContext))
    expect(snap!.feed).toBe(feed.uri)
    expect(Number(id)).toBe(feeds.place(feed, null).id)
    expect(await redis.pttl(keys.snapshot(Number(id)))).toBeGreaterThan(ctx.config.snapshotTtlMs - 60_000)
    for (const f of ctx.feeds) expect(await redis.hget(keys.anon, f.uri)).toMatch(/^\d+$/)
    const meta = await redis.hgetall(keys.meta)
    expect(meta.epoch).toMatch(/^[0-9a-f]{16}$/)
    expect(meta.cursor.length).toBeGreaterThanOrEqual(32)
    expect(Date.now() - Number(meta.primary)).toBeLessThan(5000)
  })

  it('places a reader an edge touched: the snapshot feeds.place() gives, and the authors they must not be shown', async () => {
    new ReaderStore(ctx.db.sqlite).touch(reader)
    write([{ t: 'block', uri: `at://${reader}/app.bsky.graph.block/${tid(Date.now())}`, author: reader, subject: blocked }])
    await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', reader, 'int', '')
    const id = await waitFor(() => redis.hget(keys.reader(reader), readerFeedField(feed.uri)), 'the reader placed', 10_000)
    expect(Number(id)).toBe(feeds.place(feed, reader).id)
    expect(await snapshot(id)).not.toBeNull()
    await waitFor(async () => JSON.parse((await redis.hget(keys.reader(reader), READER_EXCLUDED_FIELD)) ?? '[]').includes(blocked), 'the block in x', 10_000)
    expect(await redis.ttl(keys.reader(reader))).toBeGreaterThan(6 * 24 * 3600)
    // acknowledged
    await waitFor(async () => ((await redis.xpending(keys.touch, EDGE_GROUP)) as [number])[0] === 0, 'the touch acknowledged', 5000)
  })

  it('stores interactions an edge accepted, and moves the reader to their overlay', async () => {
    const before = await redis.hget(keys.reader(reader), readerFeedField(feed.uri))
    const first = (await snapshot(before!))!.items.find((i) => !i[0].includes(blocked))!
    const body = { interactions: [{ item: first[0], event: 'app.bsky.feed.defs#requestLess', feedContext: first[1] }] }
    await redis.xadd(keys.writes, '*', 'kind', 'interactions', 'did', reader, 'body', JSON.stringify(body))
    const moved = await placedAnew(before, 'the reader placed on their overlay')
    expect(feeds.feedback(feed, reader).map((f) => f.postUri)).toEqual([first[0]])
    const overlay = (await snapshot(moved))!
    expect(overlay.items.map((i) => i[0])).not.toContain(first[0])
    expect(Number(moved)).toBe(feeds.place(feed, reader).id)
    // the primary's own pages agree
    expect(feeds.skeleton(feed, reader, 100).feed.map((i) => i.post)).not.toContain(first[0])
  })

  it('leaves posts marked seen to the reader’s next touch (apps send them while the reader scrolls)', async () => {
    const before = await redis.hget(keys.reader(reader), readerFeedField(feed.uri))
    const seen = (await snapshot(before))!.items[0][0]
    await redis.xadd(
      keys.writes,
      '*',
      'kind',
      'interactions',
      'did',
      reader,
      'body',
      JSON.stringify({ feed: feed.uri, interactions: [{ item: seen, event: 'app.bsky.feed.defs#interactionSeen' }] }),
    )
    await waitFor(async () => ((await redis.xpending(keys.writes, EDGE_GROUP)) as [number])[0] === 0, 'the write acknowledged', 5000)
    expect(await redis.hget(keys.reader(reader), readerFeedField(feed.uri))).toBe(before)
    await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', reader, 'int', '')
    const moved = await placedAnew(before, 'the reader placed with the seen post')
    expect(Number(moved)).toBe(feeds.place(feed, reader).id)
  })

  it('drops bad entries (acknowledged, logged) without holding up the ones after them', async () => {
    await redis.xadd(keys.writes, '*', 'kind', 'interactions', 'did', reader, 'body', '{not json')
    await redis.xadd(keys.writes, '*', 'kind', 'nonsense', 'did', reader, 'body', '{}')
    await redis.xadd(keys.writes, '*', 'kind', 'interactions', 'did', reader, 'body', JSON.stringify({ interactions: [{ item: 42 }] }))
    await redis.xadd(keys.touch, '*', 'feed', 'at://did:web:nowhere/app.bsky.feed.generator/x', 'did', reader)
    const item = posts[1].uri
    await redis.xadd(
      keys.writes,
      '*',
      'kind',
      'interactions',
      'did',
      reader,
      'body',
      JSON.stringify({ feed: feed.uri, interactions: [{ item, event: 'app.bsky.feed.defs#requestMore' }] }),
    )
    await waitFor(() => feeds.feedback(feed, reader).some((f) => f.postUri === item), 'the good entry stored', 10_000)
    await waitFor(async () => ((await redis.xpending(keys.writes, EDGE_GROUP)) as [number])[0] === 0, 'every entry acknowledged', 5000)
    // handled entries leave the stream: Redis does not keep every body ever sent
    expect(await redis.xlen(keys.writes)).toBe(0)
  })

  it('re-places a reader whose mix changed on the primary (onReaderChanged)', async () => {
    const before = await redis.hget(keys.reader(reader), readerFeedField(feed.uri))
    await feeds.putMix(feed, reader, [{ agent: 'recency', weight: 100 }])
    const after = await placedAnew(before, 'the reader placed again')
    expect(Number(after)).toBe(feeds.place(feed, reader).id)
  })

  it('places a reader on the feed they save a mix for before the save is answered, placed there before or not', async () => {
    const newcomer = did('newcomer')
    const other = ctx.feeds.find((f) => f.uri !== feed.uri) ?? feed
    expect(await redis.hget(keys.reader(newcomer), readerFeedField(other.uri))).toBeNull()
    await feeds.putMix(other, newcomer, [{ agent: 'recency', weight: 100 }])
    // no waiting: an edge reading the pointer right after the answer serves the new mix
    const id = await redis.hget(keys.reader(newcomer), readerFeedField(other.uri))
    expect(Number(id)).toBe(feeds.place(other, newcomer).id)
    expect((await snapshot(id))?.feed).toBe(other.uri)
    await feeds.deleteMix(other, newcomer)
    const back = await redis.hget(keys.reader(newcomer), readerFeedField(other.uri))
    expect(Number(back)).not.toBe(Number(id))
    expect(Number(back)).toBe(feeds.place(other, newcomer).id)
  })

  it('publishes deletions and consent changes to `changes`', async () => {
    const gone = posts[0].uri
    write([{ t: 'delete', uri: gone, collection: 'app.bsky.feed.post' }])
    await waitFor(async () => (await changes()).some((c) => c.k === 'del' && c.uri === gone), 'the deletion in changes', 5000)
    write([{ t: 'consent', did: shy, kind: 'profile', value: true, rev: tid(Date.now()) }])
    await waitFor(async () => (await changes()).some((c) => c.k === 'consent' && c.did === shy && c.nu === '1' && c.hide === '0'), 'the consent change', 5000)
    expect(Number(await redis.hget(keys.meta, 'delseq'))).toBeGreaterThan(0)
  })

  it('folds the usage edges counted into the store', async () => {
    const before = new Map(new UsageRepository(ctx.db.sqlite).itemsPerAgent().map((r) => [r.agent, r.value]))
    await redis.hincrby(keys.usage, 'recency', 7)
    await redis.hincrby(keys.usage, 'x'.repeat(500), 1) // no agent has such an id: dropped
    await edge.drainUsage()
    const after = new Map(new UsageRepository(ctx.db.sqlite).itemsPerAgent().map((r) => [r.agent, r.value]))
    expect((after.get('recency') ?? 0) - (before.get('recency') ?? 0)).toBe(7)
    expect(await redis.exists(keys.usage)).toBe(0)
  })

  it('publishes everything again when Redis was emptied', async () => {
    const epoch = await redis.hget(keys.meta, 'epoch')
    await deleteQueueKeys(REDIS_URL, prefix)
    const id = await waitFor(() => redis.hget(keys.anon, feed.uri), 'the anonymous pointer again', 10_000)
    expect(await snapshot(id)).not.toBeNull()
    const meta = await redis.hgetall(keys.meta)
    expect(meta.epoch).not.toBe(epoch)
    expect(meta.cursor).toBeTruthy()
    // the consumer group is made again: touches are read
    await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', reader, 'int', '')
    await waitFor(() => redis.hget(keys.reader(reader), readerFeedField(feed.uri)), 'the reader placed again', 10_000)
    // the deletions still logged are in `changes` again
    expect((await changes()).some((c) => c.k === 'del' && c.uri === posts[0].uri)).toBe(true)
  })
})

/** A primary's context (publishing for edges, one post stored) with its Redis keys and a connection; all closed by `cleanups`. */
function publishingPrimary(cleanups: (() => unknown)[]) {
  const t = tempDir()
  const q = queuePrefix()
  cleanups.push(t.cleanup, q.cleanup)
  const redis = new Redis(REDIS_URL)
  cleanups.push(() => redis.disconnect())
  const ctx = new AppContext(
    testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, edgePublish: true, backfillConcurrency: 0 }),
    silentLogger,
  )
  cleanups.push(() => ctx.close())
  const seed = postEvent({ author: other, minutesAgo: 1 })
  const writer = new BatchWriter(ctx.db.sqlite)
  writer.write({ id: 'seed', events: [seed], scores: [], eventTime: Date.now() })
  return { ctx, keys: edgeKeys(q.prefix), redis, feed: ctx.feeds[0], writer, seed }
}

describe('entries a primary process took and never acknowledged (it died)', () => {
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  /**
   * A touch taken by `consumer`, which died before acknowledging it; then a primary starts (with `timings`): the
   * touch is handled (the reader placed) and acknowledged. Returns how long after the start it was handled, and the
   * group's consumers then.
   */
  async function takenThenHandled(
    consumer: string,
    timings?: { claimEveryMs: number; claimIdleMs: number },
  ): Promise<{ handledAfterMs: number; consumers: string[] }> {
    const { ctx, keys, redis, feed } = publishingPrimary(cleanups)
    await redis.xgroup('CREATE', keys.touch, EDGE_GROUP, '0', 'MKSTREAM')
    await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', reader, 'int', '')
    const taken = (await redis.xreadgroup('GROUP', EDGE_GROUP, consumer, 'COUNT', 10, 'STREAMS', keys.touch, '>')) as [string, unknown[]][]
    expect(taken[0][1]).toHaveLength(1)
    const started = Date.now()
    const served = createServeApp(ctx, timings ? { edgeTimings: timings } : {})
    cleanups.push(served.close)
    const id = await waitFor(() => redis.hget(keys.reader(reader), readerFeedField(feed.uri)), 'the taken touch handled', 10_000)
    const handledAfterMs = Date.now() - started
    expect(Number(id)).toBe(served.feeds.place(feed, reader).id)
    await waitFor(async () => ((await redis.xpending(keys.touch, EDGE_GROUP)) as [number])[0] === 0, 'the taken touch acknowledged', 5000)
    const consumers = (await redis.xinfo('CONSUMERS', keys.touch, EDGE_GROUP)) as unknown[][]
    return { handledAfterMs, consumers: consumers.map((c) => String(c[1])) }
  }

  it('are claimed by a live primary once idle, and handled', async () => {
    await takenThenHandled('gone:1', { claimEveryMs: 200, claimIdleMs: 300 })
  })

  it('are taken over at once from a process of this machine that is gone (a primary killed and started again)', async () => {
    // the process that took the touch has exited: its pid names no process any more
    const dead = `${os.hostname()}:${spawnSync(process.execPath, ['-e', '']).pid}`
    // with the default timings an entry must wait 30 s to be claimed: this one is taken at start, its consumer removed
    const { handledAfterMs, consumers } = await takenThenHandled(dead)
    expect(handledAfterMs).toBeLessThan(CLAIM_IDLE_MS)
    expect(consumers).not.toContain(dead)
  })
})

describe('another serving process of the primary (SKYSIFT_SERVE_PROCESSES)', () => {
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('places the readers it is told of, and leaves anon, meta and changes to the first', async () => {
    const { ctx, keys, redis, feed, writer, seed } = publishingPrimary(cleanups)
    const served = createServeApp(ctx, { leader: false })
    cleanups.push(served.close)
    await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', reader, 'int', '')
    await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', '', 'int', '')
    const id = await waitFor(() => redis.hget(keys.reader(reader), readerFeedField(feed.uri)), 'the touched reader placed', 10_000)
    expect(Number(id)).toBe(served.feeds.place(feed, reader).id)
    expect(await redis.get(keys.snapshot(Number(id)))).toBeTruthy()
    writer.write({ id: 'del', events: [{ t: 'delete', uri: seed.uri, collection: 'app.bsky.feed.post' }], scores: [], eventTime: Date.now() })
    await new Promise((r) => setTimeout(r, 1500))
    expect(await redis.exists(keys.anon, keys.meta, keys.changes)).toBe(0)
  })
})

import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { FeedCache, MIN_CACHED_POSTS } from '../src/rank/feed-cache.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent } from './support/builders.ts'
import { tempDir } from './support/resources.ts'

/** The in-memory parts of FeedCache, seen from two connections as two processes would. */
describe('FeedCache memory', () => {
  let ctx: AppContext
  let other: Db
  let cleanup: () => void

  beforeEach(() => {
    const t = tempDir()
    cleanup = t.cleanup
    ctx = new AppContext(readConfig({}, { dbPath: path.join(t.dir, 'skysift.db') }), silentLogger)
    other = openDb(path.join(t.dir, 'skysift.db'))
  })
  afterEach(async () => {
    other.close()
    await ctx.close()
    cleanup()
  })

  const posts = Array.from({ length: 6 }, (_, i) => postEvent({ minutesAgo: 10 - i, text: `post ${i}` }))

  it('serves a page from memory until an item of its snapshot is deleted, by any connection', () => {
    new BatchWriter(ctx.db.sqlite).write({ id: 'a', events: posts, scores: [], eventTime: Date.now() })
    const feed = ctx.feeds[0]
    const cache = new FeedCache(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    const snap = cache.build(feed, feed.defaults)
    const page = cache.page(snap.id, 0, 3)
    expect(cache.page(snap.id, 0, 3)).toBe(page) // the same array: from memory
    const gone = page[1].postUri
    // another process's writer honours a delete
    new BatchWriter(other.sqlite).write({ id: 'd', events: [{ t: 'delete', uri: gone, collection: 'app.bsky.feed.post' }], scores: [], eventTime: Date.now() })
    const after = cache.page(snap.id, 0, 3)
    expect(after.map((i) => i.postUri)).not.toContain(gone)
    expect(after).toHaveLength(3)
    // a snapshot that was removed is gone, not served from memory
    other.sqlite.prepare('DELETE FROM feed_snapshots WHERE id = ?').run(snap.id)
    expect(cache.pageOf(snap.id, 0, 3)).toBeNull()
  })

  it("ranks with what it keeps in memory and still sees new posts, counts, edits and another process's new snapshots", () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    writer.write({ id: 'a', events: posts, scores: [], eventTime: Date.now() })
    const feed = ctx.feeds[0]
    const cache = new FeedCache(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    const first = cache.rank(feed, feed.defaults).map((i) => i.uri)
    expect(first[0]).toBe(posts[5].uri)
    // new post, likes on an old one, an edit, a delete
    const fresh = postEvent({ minutesAgo: 0, text: 'new' })
    writer.write({
      id: 'b',
      events: [
        fresh,
        ...Array.from({ length: 20 }, (_, i) => ({ t: 'like' as const, uri: `at://did:plc:liker${i}/app.bsky.feed.like/3l${i}`, author: `did:plc:liker${i}`, subject: posts[0].uri })),
        { ...posts[2], cid: 'bafyreiedited', text: 'edited' },
        { t: 'delete', uri: posts[3].uri, collection: 'app.bsky.feed.post' },
      ],
      scores: [],
      eventTime: Date.now(),
    })
    const again = cache.rank(feed, feed.defaults)
    const uris = again.map((i) => i.uri)
    expect(uris).toContain(fresh.uri)
    expect(uris).not.toContain(posts[3].uri)
    expect(uris).toContain(posts[2].uri)
    // the liked post now has engagement in its attribution
    expect(again.find((i) => i.uri === posts[0].uri)?.context).toMatch(/engagement:\+\d+/)
    // latest(): this process's own snapshot at once; another process's within LATEST_TTL_MS
    const mine = cache.build(feed, feed.defaults)
    expect(cache.latest(feed.uri, feed.defaults.fingerprint)?.id).toBe(mine.id)
    const theirs = new FeedCache(other.sqlite, ctx.host, silentLogger, ctx.config).build(feed, feed.defaults)
    expect(cache.latest(feed.uri, feed.defaults.fingerprint, Date.now() + 5000)?.id).toBe(theirs.id)
  })

  it('keeps the parsed posts it caches bounded while the newest posts change between builds', () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    const feed = { ...ctx.feeds[0], maxCandidates: 500, windowHours: 48 }
    const cache = new FeedCache(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    const BUILDS = 80
    let largest = 0
    for (let b = 0; b < BUILDS; b++) {
      // 500 posts newer than all before: each build's candidates are all new
      const batch = Array.from({ length: 500 }, (_, i) => postEvent({ minutesAgo: BUILDS - b - i / 1000, text: `post ${b}.${i}` }))
      writer.write({ id: `b${b}`, events: batch, scores: [], eventTime: Date.now() })
      const uris = new Set(batch.map((p) => p.uri))
      const items = cache.rank(feed, feed.defaults, Date.now(), undefined, 10)
      expect(items.length).toBe(10)
      expect(items.every((it) => uris.has(it.uri))).toBe(true)
      largest = Math.max(largest, cache.cachedPosts())
    }
    // 40,000 posts went through; "unused for 50 builds" alone would keep 25,000 of them
    expect(largest).toBeLessThanOrEqual(MIN_CACHED_POSTS)
    expect(cache.cachedPosts()).toBeGreaterThanOrEqual(500)
  })
})

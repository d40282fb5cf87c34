import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { MAX_LISTS, MIN_CACHED_POSTS, uniqueAscending } from '../src/feed/lists.ts'
import { openLists } from '../src/feed/open-lists.ts'
import { RECHECK_MS } from '../src/feed/snapshot-pages.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { BatchWriter } from '../src/store/writer.ts'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import { Retention, retentionPolicy } from '../src/store/retention.ts'
import { resolveMix } from '../src/rank/mix.ts'
import { postEvent } from './support/builders.ts'
import { tempDir, testConfig } from './support/resources.ts'

/** The in-memory parts of the stored lists (built and paged), seen from two connections as two processes would. */
describe('stored lists in memory', () => {
  let ctx: AppContext
  let other: Db
  let cleanup: () => void

  beforeEach(() => {
    const t = tempDir()
    cleanup = t.cleanup
    ctx = new AppContext(testConfig({ dbPath: path.join(t.dir, 'skysift.db') }), silentLogger)
    other = openDb(path.join(t.dir, 'skysift.db'))
  })
  afterEach(async () => {
    other.close()
    await ctx.close()
    cleanup()
  })

  const posts = Array.from({ length: 6 }, (_, i) => postEvent({ minutesAgo: 10 - i, text: `post ${i}` }))

  it('serves a page from memory until an item of its snapshot is deleted: through its own connection at once, by another within RECHECK_MS', () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    writer.write({ id: 'a', events: posts, scores: [], eventTime: Date.now() })
    const feed = ctx.feeds[0]
    const { pages, lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    const snap = lists.build(feed, feed.defaults)
    let t = 1e9 // pageOf's clock, moved by hand
    const page = pages.pageOf(snap.id, 0, 3, t)!
    expect(pages.pageOf(snap.id, 0, 3, t + 1)).toBe(page) // the same array: from memory
    // this process's writer deletes one: gone from the next page at once
    writer.write({ id: 'd1', events: [{ t: 'delete', uri: page[0].postUri, collection: 'app.bsky.feed.post' }], scores: [], eventTime: Date.now() })
    const mine = pages.pageOf(snap.id, 0, 3, t + 2)!
    expect(mine.map((i) => i.postUri)).not.toContain(page[0].postUri)
    expect(mine).toHaveLength(3)
    // another process's writer deletes one: still served until RECHECK_MS has passed since the last look, then gone
    const gone = mine[1].postUri
    t += 2 + RECHECK_MS
    expect(pages.pageOf(snap.id, 0, 3, t)).toBe(mine) // a look (RECHECK_MS passed since the last one): nothing new
    new BatchWriter(other.sqlite).write({ id: 'd2', events: [{ t: 'delete', uri: gone, collection: 'app.bsky.feed.post' }], scores: [], eventTime: Date.now() })
    expect(pages.pageOf(snap.id, 0, 3, t + RECHECK_MS - 1)).toBe(mine)
    const after = pages.pageOf(snap.id, 0, 3, t + RECHECK_MS)!
    expect(after.map((i) => i.postUri)).not.toContain(gone)
    expect(after).toHaveLength(3)
    // a snapshot that was removed is gone, not served from memory
    other.sqlite.prepare('DELETE FROM feed_snapshots WHERE id = ?').run(snap.id)
    expect(pages.pageOf(snap.id, 0, 3, t + 2 * RECHECK_MS)).toBeNull()
  })

  it("ranks with what it keeps in memory and still sees new posts, counts, edits and another process's new snapshots", () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    writer.write({ id: 'a', events: posts, scores: [], eventTime: Date.now() })
    const feed = ctx.feeds[0]
    const { pages, lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    const first = lists.rank(feed, feed.defaults).map((i) => i.uri)
    expect(first[0]).toBe(posts[5].uri)
    // new post, likes on an old one, an edit, a delete
    const fresh = postEvent({ minutesAgo: 0, text: 'new' })
    writer.write({
      id: 'b',
      events: [
        fresh,
        ...Array.from({ length: 20 }, (_, i) => ({
          t: 'like' as const,
          uri: `at://did:plc:liker${i}/app.bsky.feed.like/3l${i}`,
          author: `did:plc:liker${i}`,
          subject: posts[0].uri,
        })),
        { ...posts[2], cid: 'bafyreiedited', text: 'edited' },
        { t: 'delete', uri: posts[3].uri, collection: 'app.bsky.feed.post' },
      ],
      scores: [],
      eventTime: Date.now(),
    })
    const again = lists.rank(feed, feed.defaults)
    const uris = again.map((i) => i.uri)
    expect(uris).toContain(fresh.uri)
    expect(uris).not.toContain(posts[3].uri)
    expect(uris).toContain(posts[2].uri)
    // the liked post now has engagement in its attribution
    expect(again.find((i) => i.uri === posts[0].uri)?.context).toMatch(/engagement:\+\d+/)
    // latest(): this process's own snapshot at once; another process's within LATEST_TTL_MS
    const mine = lists.build(feed, feed.defaults)
    expect(pages.latest(feed.uri, feed.defaults.fingerprint)?.id).toBe(mine.id)
    const theirs = openLists(other.sqlite, ctx.host, silentLogger, ctx.config).lists.build(feed, feed.defaults)
    expect(pages.latest(feed.uri, feed.defaults.fingerprint, Date.now() + 5000)?.id).toBe(theirs.id)
  })

  it('keeps the parsed posts it caches bounded while the newest posts change between builds', () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    const feed = { ...ctx.feeds[0], maxCandidates: 500, windowHours: 48 }
    const { lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    const BUILDS = 80
    let largest = 0
    for (let b = 0; b < BUILDS; b++) {
      // 500 posts newer than all before: each build's candidates are all new
      const batch = Array.from({ length: 500 }, (_, i) => postEvent({ minutesAgo: BUILDS - b - i / 1000, text: `post ${b}.${i}` }))
      writer.write({ id: `b${b}`, events: batch, scores: [], eventTime: Date.now() })
      const uris = new Set(batch.map((p) => p.uri))
      const items = lists.rank(feed, feed.defaults, Date.now(), undefined, 10)
      expect(items.length).toBe(10)
      expect(items.every((it) => uris.has(it.uri))).toBe(true)
      largest = Math.max(largest, lists.cachedPosts())
    }
    // 40,000 posts went through; "unused for 50 builds" alone would keep 25,000 of them
    expect(largest).toBeLessThanOrEqual(MIN_CACHED_POSTS)
    expect(lists.cachedPosts()).toBeGreaterThanOrEqual(500)
  })

  /**
   * Drives the writer through every kind of change, round after round, and
   * compares what a long-lived cache ranks (its candidate lists kept current
   * from the change log) with what a cache on a fresh connection ranks (one
   * full read): they must agree exactly.
   */
  it('keeps its candidate lists equal to a fresh read through new posts, bursts of them, likes, unlikes, deletes, edits, purges and time', async () => {
    const file = ctx.config.dbPath
    const writer = new BatchWriter(ctx.db.sqlite)
    // a small list in a short window: it is full, deletions leave it short, and posts age out of it
    const feed = { ...ctx.feeds[0], maxCandidates: 40, windowHours: 2 }
    // a second window over the same posts, whose list shares cached posts (and their score columns' sources) with the first
    const narrow = { ...ctx.feeds[0], maxCandidates: 15, windowHours: 1 }
    const warm = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config).lists
    let seed = 5
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
    const authors = [
      'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa',
      'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb',
      'did:plc:cccccccccccccccccccccccc',
      'did:plc:dddddddddddddddddddddddd',
    ]
    const live: PostEvent[] = []
    const likes: { uri: string; subject: string }[] = []
    const t0 = Date.now()
    let made = 0
    // static agents, one of them a topic filter: once it is seen to drop most, it is asked first and the others only
    // about the posts it keeps (their other cells stay unread); a mix without the filter then needs those cells
    const scorer = { agent: 'keyword', weight: 50, options: { include: ['about'] } }
    const filtered = resolveMix(ctx.host, [
      { agent: 'language', weight: 0, options: { langs: ['en'] } },
      scorer,
      { agent: 'keyword', weight: 0, options: { include: ['cats'], requireMatch: true } },
    ])
    const unfiltered = resolveMix(ctx.host, [scorer, { agent: 'recency', weight: 20 }])
    const compare = (now: number) => {
      const fresh = openDb(file)
      try {
        const cold = openLists(fresh.sqlite, ctx.host, silentLogger, ctx.config).lists
        for (const f of [feed, narrow]) {
          for (const mix of [f.defaults, filtered, unfiltered]) {
            const expected = cold.rank(f, mix, now)
            expect(expected.length).toBeGreaterThan(0)
            expect(warm.rank(f, mix, now)).toEqual(expected)
          }
        }
      } finally {
        fresh.close()
      }
    }
    for (let round = 0; round < 40; round++) {
      const now = t0 + round * 4 * 60_000
      const events: IngestEvent[] = []
      // new posts, some already outside the window, some sharing a creation time
      const tie = now - Math.floor(rnd() * 90) * 60_000
      // now and then a burst: new posts enough to be read as one range of the table (fewer than a full re-read takes)
      const burst = round % 5 === 3 ? 100 : 6
      for (let k = 0; k < burst; k++) {
        const p = postEvent({
          author: authors[Math.floor(rnd() * authors.length)],
          text: `post ${made++} ${rnd() < 0.7 ? 'about' : 'on'} ${rnd() < 0.3 ? 'cats' : 'dogs'}`,
          langs: rnd() < 0.8 ? ['en'] : ['de'],
          createdAt: k < 2 ? tie : now - Math.floor(rnd() * 150 * 60_000),
        })
        live.push(p)
        events.push(p)
      }
      // likes and unlikes of live posts
      for (let k = 0; k < 8 && live.length; k++) {
        const subject = live[Math.floor(rnd() * live.length)].uri
        const like = { uri: `at://did:plc:liker${made}x${k}/app.bsky.feed.like/3l${round}x${k}`, subject }
        likes.push(like)
        events.push({ t: 'like', uri: like.uri, author: `did:plc:liker${made}x${k}`, subject })
      }
      if (likes.length > 4 && rnd() < 0.7) {
        const [gone] = likes.splice(Math.floor(rnd() * likes.length), 1)
        events.push({ t: 'delete', uri: gone.uri, collection: 'app.bsky.feed.like' })
      }
      // a delete and an edit
      if (live.length > 10) {
        const [gone] = live.splice(Math.floor(rnd() * live.length), 1)
        events.push({ t: 'delete', uri: gone.uri, collection: 'app.bsky.feed.post' })
        const edited = live[Math.floor(rnd() * live.length)]
        events.push({ ...edited, cid: `bafyreiedited${round}`, text: `${edited.text} (edited)` })
      }
      // now and then an account goes away with every post of it
      if (round % 13 === 12) {
        const did = authors.shift()!
        events.push({ t: 'account', did, active: false, status: 'takendown' })
        for (let i = live.length - 1; i >= 0; i--) if (live[i].author === did) live.splice(i, 1)
      }
      writer.write({ id: `round-${round}`, events, scores: [], eventTime: now })
      compare(now)
    }
    // retention trims the log past where the warm cache read it: it reads its list whole again, and still agrees
    const policy = { ...retentionPolicy([feed], { snapshotTtlMs: ctx.config.snapshotTtlMs }), changeLogMs: 60_000 }
    const retention = new Retention(ctx.db.sqlite, silentLogger, policy, { pauseMs: 0 })
    const later = t0 + 40 * 4 * 60_000
    await retention.run(later)
    writer.write({ id: 'after-mark', events: [postEvent({ author: authors[0], text: 'cats again', createdAt: later - 60_000 })], scores: [], eventTime: later })
    const trimmed = await retention.run(later + 120_000)
    expect(trimmed.logRows).toBeGreaterThan(100)
    expect(ctx.db.sqlite.prepare('SELECT count(*) FROM post_changes').pluck().get()).toBe(1)
    writer.write({ id: 'after-trim', events: [postEvent({ author: authors[0], text: 'more cats', createdAt: later - 30_000 })], scores: [], eventTime: later })
    compare(later)
  })

  it('ranks right with more windows than it keeps candidate lists for', () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    const t0 = Date.now()
    const post = (i: number) => postEvent({ text: `post ${i} about cats`, createdAt: t0 - i * 7 * 60_000 })
    writer.write({ id: 'a', events: Array.from({ length: 300 }, (_, i) => post(i)), scores: [], eventTime: t0 })
    const { lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
    // every window its own list: more of them than there are bits for, used twice round (the least recently used goes)
    const feeds = Array.from({ length: MAX_LISTS + 5 }, (_, i) => ({ ...ctx.feeds[0], windowHours: 1 + i, maxCandidates: 50 + i }))
    for (let pass = 0; pass < 2; pass++) {
      if (pass === 1) writer.write({ id: 'b', events: [post(-1), post(-2)], scores: [], eventTime: t0 })
      const fresh = openDb(ctx.config.dbPath)
      try {
        const cold = openLists(fresh.sqlite, ctx.host, silentLogger, ctx.config).lists
        for (const f of feeds) expect(lists.rank(f, f.defaults, t0)).toEqual(cold.rank(f, f.defaults, t0))
      } finally {
        fresh.close()
      }
    }
  })

  it('still serves an edited post (an edit is not a deletion) and stops serving a deleted one', () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    writer.write({ id: 'a', events: posts, scores: [], eventTime: Date.now() })
    const feed = ctx.feeds[0]
    // @NOTE looks at the store on every request (recheckMs 0): what is checked here is what it sees, not when
    const { pages, lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, { ...ctx.config, recheckMs: 0 })
    const snap = lists.build(feed, feed.defaults)
    const page = pages.page(snap.id, 0, 6).map((i) => i.postUri)
    expect(page).toHaveLength(6)
    const [edited, deleted] = [posts[1], posts[4]]
    new BatchWriter(other.sqlite).write({
      id: 'b',
      events: [
        { ...edited, cid: 'bafyreiedited', text: 'edited' },
        { t: 'delete', uri: deleted.uri, collection: 'app.bsky.feed.post' },
      ],
      scores: [],
      eventTime: Date.now(),
    })
    const after = pages.page(snap.id, 0, 6).map((i) => i.postUri)
    expect(after).toEqual(page.filter((u) => u !== deleted.uri))
    // a snapshot built after the delete leaves it out too, and the edit is in it
    const next = lists.build(feed, feed.defaults)
    expect(pages.items(next.id).map((i) => i.uri)).toEqual(expect.arrayContaining([edited.uri]))
    expect(pages.items(next.id).map((i) => i.uri)).not.toContain(deleted.uri)
  })

  it('shows a post again once it is stored again (its account came back after a takedown)', () => {
    const writer = new BatchWriter(ctx.db.sqlite)
    const did = 'did:plc:returningreturningreturn'
    const theirs = postEvent({ author: did, minutesAgo: 1, text: 'back again' })
    writer.write({ id: 'a', events: [...posts, theirs], scores: [], eventTime: Date.now() })
    const feed = ctx.feeds[0]
    // @NOTE looks at the store on every request (recheckMs 0): what is checked here is what it sees, not when
    const { pages, lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, { ...ctx.config, recheckMs: 0 })
    expect(pages.page(lists.build(feed, feed.defaults).id, 0, 10).map((i) => i.postUri)).toContain(theirs.uri)
    // taken down: gone at once from the list already served, and from the next one
    new BatchWriter(other.sqlite).write({ id: 'b', events: [{ t: 'account', did, active: false, status: 'takendown' }], scores: [], eventTime: Date.now() })
    expect(pages.page(pages.latest(feed.uri, feed.defaults.fingerprint)!.id, 0, 10).map((i) => i.postUri)).not.toContain(theirs.uri)
    expect(pages.page(lists.build(feed, feed.defaults).id, 0, 10).map((i) => i.postUri)).not.toContain(theirs.uri)
    // reinstated, and the post replayed: the next list shows it again
    new BatchWriter(other.sqlite).write({ id: 'c', events: [{ t: 'account', did, active: true, status: null }, theirs], scores: [], eventTime: Date.now() })
    expect(pages.page(lists.build(feed, feed.defaults).id, 0, 10).map((i) => i.postUri)).toContain(theirs.uri)
  })

  describe('agent instances', () => {
    const many = Array.from({ length: 300 }, (_, i) => postEvent({ minutesAgo: 300 - i, text: `post w${i} here` }))
    const keyword = (word: string, keep = true) => resolveMix(ctx.host, [{ agent: 'keyword', weight: 100, options: { include: [word] } }], [], { keep })

    it('keeps at most SKYSIFT_AGENT_INSTANCES columns, least recently used out, and ranks right after evicting', async () => {
      await ctx.close()
      ctx = new AppContext(testConfig({ dbPath: ctx.config.dbPath, agentInstances: 64 }), silentLogger)
      new BatchWriter(ctx.db.sqlite).write({ id: 'm', events: many, scores: [], eventTime: Date.now() })
      const feed = ctx.feeds[0]
      const { lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
      const hot = keyword('w7')
      for (let i = 0; i < 200; i++) {
        const items = lists.rank(feed, keyword(`w${i}`), Date.now(), undefined, 5)
        expect(items[0].uri).toBe(many[i].uri)
        // one mix read all along keeps its column
        expect(lists.rank(feed, hot, Date.now(), undefined, 1)[0].uri).toBe(many[7].uri)
        expect(lists.slotCount()).toBeLessThanOrEqual(64)
        expect(ctx.host.instanceCount).toBeLessThanOrEqual(64)
      }
      expect(lists.slotCount()).toBe(64)
      // an evicted instance ranks as before when it comes back
      expect(lists.rank(feed, keyword('w3'), Date.now(), undefined, 1)[0].uri).toBe(many[3].uri)
    })

    it('previews leave nothing behind and rank only the newest candidates they may', async () => {
      new BatchWriter(ctx.db.sqlite).write({ id: 'm', events: many, scores: [], eventTime: Date.now() })
      const feed = ctx.feeds[0]
      const { lists } = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config)
      lists.build(feed, feed.defaults)
      const slots = lists.slotCount()
      const instances = ctx.host.instanceCount
      const scores = () => ctx.db.sqlite.prepare('SELECT count(*) FROM agent_scores').pluck().get()
      const stored = scores()
      let pauses = 0
      const pause = async () => void pauses++
      for (let i = 250; i < 300; i++) {
        const items = await lists.preview(feed, keyword(`w${i}`, false), { limit: 5, maxCandidates: 100, pause })
        expect(items[0].uri).toBe(many[i].uri)
      }
      expect(pauses).toBeGreaterThanOrEqual(100)
      // a post past the newest 100 is not a candidate of a preview
      const old = await lists.preview(feed, keyword('w10', false), { limit: 100, maxCandidates: 100, pause })
      expect(old).toHaveLength(100)
      expect(old.map((i) => i.uri)).not.toContain(many[10].uri)
      expect(lists.slotCount()).toBe(slots)
      expect(ctx.host.instanceCount).toBe(instances)
      expect(scores()).toBe(stored)
    })
  })
})

describe('uniqueAscending', () => {
  it('gives each id once, ascending, for dense runs (a bitmap) and scattered ids (a sort)', () => {
    let seed = 3
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
    for (let round = 0; round < 200; round++) {
      const base = Math.floor(rnd() * 3e9)
      const spread = rnd() < 0.5 ? 50 : 1e7
      const ids = Array.from({ length: Math.floor(rnd() * 120) }, () => base + Math.floor(rnd() * spread))
      expect(Array.from(uniqueAscending(ids))).toEqual([...new Set(ids)].sort((a, b) => a - b))
    }
  })
})

import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AppContext } from '../src/context.ts'
import { decodeJetstream } from '../src/ingest/jetstream.ts'
import { normalizeCommit } from '../src/ingest/events.ts'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import type { FeedService } from '../src/feed/service.ts'
import { FollowGraph } from '../src/store/follow-graph.ts'
import { FILTER_RECHECK_MS, ReaderFilter } from '../src/store/reader-filter.ts'
import { ReaderRetention } from '../src/store/reader-retention.ts'
import { ReaderStore } from '../src/store/readers.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent, tid } from './support/builders.ts'
import { storeFeedService } from './support/feed-service.ts'

const did = (name: string) => `did:plc:${name.padEnd(24, 'x')}`
const [reader, blocked, blocker, listed, hider, shy, other] = ['reader', 'blocked', 'blocker', 'listed', 'hider', 'shy', 'other'].map(did)
const VIS = 'app.bsky.actor.contentVisibilityDeclaration'
const rev = (ms: number) => tid(ms)
let n = 0
const uri = (author: string, collection: string) => `at://${author}/${collection}/${tid(Date.now(), ++n % 1000)}`
const declare = (author: string, hide: boolean, at: number): IngestEvent => ({ t: 'consent', did: author, kind: 'visibility', value: hide, rev: rev(at) })
const block = (author: string, subject: string): IngestEvent => ({ t: 'block', uri: uri(author, 'app.bsky.graph.block'), author, subject })

describe('consent and blocks: decoding', () => {
  it('decodes declarations, profile self-labels, blocks and block lists from commits, with their revision', () => {
    const t0 = Date.now()
    const base = { did: hider, rkey: 'self', operation: 'create', cid: 'bafyreiaaaaaaaaaaaaaaaaaaaa', timeMs: t0, rev: rev(t0) }
    expect(normalizeCommit({ ...base, collection: VIS, record: { $type: VIS, hideFromAlgorithmicRecommendations: true } })).toEqual({
      t: 'consent',
      did: hider,
      kind: 'visibility',
      value: true,
      rev: rev(t0),
    })
    // a missing field means false; other record keys are not the declaration
    expect(normalizeCommit({ ...base, collection: VIS, record: {} })).toMatchObject({ value: false })
    expect(normalizeCommit({ ...base, collection: VIS, rkey: 'other', record: { hideFromAlgorithmicRecommendations: true } })).toBeNull()
    const profile = { displayName: 'x', labels: { $type: 'com.atproto.label.defs#selfLabels', values: [{ val: '!no-unauthenticated' }] } }
    expect(normalizeCommit({ ...base, collection: 'app.bsky.actor.profile', record: profile })).toMatchObject({ t: 'consent', kind: 'profile', value: true })
    expect(normalizeCommit({ ...base, collection: 'app.bsky.actor.profile', record: { displayName: 'x' } })).toMatchObject({ kind: 'profile', value: false })
    expect(normalizeCommit({ ...base, operation: 'delete', collection: VIS })).toEqual({
      t: 'delete',
      uri: `at://${hider}/${VIS}/self`,
      collection: VIS,
      rev: rev(t0),
    })
    const rkey = tid(t0)
    expect(normalizeCommit({ ...base, rkey, collection: 'app.bsky.graph.block', record: { subject: blocked, createdAt: 'x' } })).toMatchObject({
      t: 'block',
      author: hider,
      subject: blocked,
    })
    const list = `at://${other}/app.bsky.graph.list/${rkey}`
    expect(normalizeCommit({ ...base, rkey, collection: 'app.bsky.graph.listblock', record: { subject: list } })).toMatchObject({ t: 'listblock', list })
    // an item only counts in its list owner's repo
    expect(normalizeCommit({ ...base, rkey, collection: 'app.bsky.graph.listitem', record: { list, subject: listed } })).toMatchObject({
      reason: expect.stringContaining('another repo'),
    })
    expect(normalizeCommit({ ...base, did: other, rkey, collection: 'app.bsky.graph.listitem', record: { list, subject: listed } })).toMatchObject({
      t: 'listitem',
      list,
      subject: listed,
    })
    // the Jetstream path decodes the same commit
    const line = JSON.stringify({
      did: hider,
      time_us: t0 * 1000,
      kind: 'commit',
      commit: { rev: rev(t0), operation: 'create', collection: VIS, rkey: 'self', cid: base.cid, record: { hideFromAlgorithmicRecommendations: true } },
    })
    expect(decodeJetstream(line)).toMatchObject({ ok: true, event: { t: 'consent', did: hider, value: true, rev: rev(t0) } })
  })
})

describe('consent and blocks: the store and the pages served', () => {
  let ctx: AppContext
  let feeds: FeedService
  let writer: BatchWriter
  let id = 0
  const write = (events: IngestEvent[]) => writer.write({ id: `b${++id}`, events, scores: [], eventTime: Date.now() })
  const newestFirst = (author: string, count: number, from: number): PostEvent[] =>
    Array.from({ length: count }, (_, i) => postEvent({ author, minutesAgo: from + i, text: `post ${i}` }))
  const page = (who: string | null, limit = 10, cursor?: string) => feeds.skeleton(ctx.feeds[0], who, limit, cursor)
  const authors = (p: { feed: { post: string }[] }) => p.feed.map((i) => i.post.split('/')[2])

  let close: () => Promise<void>
  beforeEach(() => {
    ;({ ctx, feeds, close } = storeFeedService((c) => ({
      readerFilter: new ReaderFilter(c.db.sqlite, { recheckMs: 0 }),
      onReader: (d) => new ReaderStore(c.db.sqlite).touch(d),
    })))
    writer = new BatchWriter(ctx.db.sqlite)
  })
  afterEach(() => close())

  it('an older declaration arriving after a newer one does not win, and a delete applies by its revision', () => {
    const t0 = Date.now()
    const hidden = () => ctx.db.sqlite.prepare('SELECT hide FROM author_consent WHERE did = ?').pluck().get(hider)
    write([declare(hider, true, t0 + 2000)])
    write([declare(hider, false, t0 + 1000)]) // older: written before the one above, stored after it
    expect(hidden()).toBe(1)
    const del = (at: number): IngestEvent => ({ t: 'delete', uri: `at://${hider}/${VIS}/self`, collection: VIS, rev: rev(at) })
    write([del(t0 + 1500)]) // older than the declaration in force: ignored
    expect(hidden()).toBe(1)
    write([del(t0 + 3000)])
    expect(hidden()).toBe(0)
    write([declare(hider, true, t0 + 2500)]) // a create from before the delete, late: the delete stands
    expect(hidden()).toBe(0)
    write([declare(hider, true, t0 + 4000)]) // created again afterwards
    expect(hidden()).toBe(1)
  })

  it("a declaration takes the author's posts out of every page at once, including pages already served, and false brings them back", async () => {
    const mine = newestFirst(hider, 3, 1)
    write([...mine, ...newestFirst(other, 3, 10)])
    expect(authors(page(null))).toEqual([hider, hider, hider, other, other, other])
    expect(authors(page(reader))).toEqual([hider, hider, hider, other, other, other])
    write([declare(hider, true, Date.now())])
    // the cached list still holds them: the deletions log and the filter leave them out of what is served
    expect(authors(page(null))).toEqual([other, other, other])
    expect(authors(page(reader))).toEqual([other, other, other])
    // a list built afterwards never had them as candidates
    const built = feeds.build(ctx.feeds[0], ctx.feeds[0].defaults, null)
    expect(feeds.skeleton(ctx.feeds[0], null, 10).feed).toHaveLength(3)
    expect(ctx.db.sqlite.prepare('SELECT items FROM feed_snapshots WHERE id = ?').pluck().get(built.id)).not.toContain(hider)
    write([declare(hider, false, Date.now() + 1)])
    await sleep(FILTER_RECHECK_MS + 50) // the shared candidate filter looks again
    feeds.build(ctx.feeds[0], ctx.feeds[0].defaults, null)
    expect(authors(page(null))).toEqual([hider, hider, hider, other, other, other])
  })

  it('an account that asks not to be shown to logged-out readers is left out for anonymous readers only', () => {
    write([...newestFirst(shy, 2, 1), ...newestFirst(other, 2, 10), { t: 'consent', did: shy, kind: 'profile', value: true, rev: rev(Date.now()) }])
    expect(authors(page(null))).toEqual([other, other])
    expect(authors(page(reader))).toEqual([shy, shy, other, other])
    write([{ t: 'delete', uri: `at://${shy}/app.bsky.actor.profile/self`, collection: 'app.bsky.actor.profile', rev: rev(Date.now() + 1) }])
    expect(authors(page(null))).toEqual([shy, shy, other, other])
  })

  it('blocks both ways and block lists leave those authors out, and pages come back full from further down the list', () => {
    new ReaderStore(ctx.db.sqlite).touch(reader)
    const list = `at://${other}/app.bsky.graph.list/${tid(Date.now())}`
    write([
      ...newestFirst(blocked, 4, 1),
      ...newestFirst(blocker, 4, 10),
      ...newestFirst(listed, 4, 20),
      ...newestFirst(other, 8, 30),
      block(reader, blocked),
      block(blocker, reader),
      { t: 'listblock', uri: uri(reader, 'app.bsky.graph.listblock'), author: reader, list },
      { t: 'listitem', uri: uri(other, 'app.bsky.graph.listitem'), list, subject: listed },
      // neither side a reader: not kept
      block(blocked, other),
    ])
    expect(ctx.db.sqlite.prepare('SELECT count(*) FROM blocks').pluck().get()).toBe(2)
    const first = page(reader, 5)
    expect(authors(first)).toEqual([other, other, other, other, other])
    const second = page(reader, 5, first.cursor)
    expect(authors(second)).toEqual([other, other, other])
    expect(second.cursor).toBeUndefined()
    // others still see everyone
    expect(authors(page(null, 5))).toEqual([blocked, blocked, blocked, blocked, blocker])
    // unblocking brings them back
    const b = ctx.db.sqlite.prepare('SELECT uri FROM blocks WHERE author = ?').pluck().get(reader) as string
    write([{ t: 'delete', uri: b, collection: 'app.bsky.graph.block' }])
    expect(authors(page(reader, 2))).toEqual([blocked, blocked])
  })

  it("a personal list never ranks a blocked author, and the writer keeps a reader's follows and likes from the firehose", async () => {
    const feed = ctx.feeds[0]
    await feeds.putMix(feed, reader, [
      { agent: 'follows', weight: 100 },
      { agent: 'recency', weight: 10 },
    ])
    write([...newestFirst(blocked, 2, 1), ...newestFirst(other, 2, 10), block(reader, blocked)])
    await sleep(FILTER_RECHECK_MS + 50)
    const mix = feeds.mixFor(feed, reader).mix
    const snap = feeds.build(feed, mix, reader)
    expect(ctx.db.sqlite.prepare('SELECT items FROM feed_snapshots WHERE id = ?').pluck().get(snap.id)).not.toContain(blocked)
    // a reader seen signed in without a saved mix is kept too
    const fresh = did('fresh')
    page(fresh)
    const liked = postEvent({ author: other, minutesAgo: 1 })
    write([
      liked,
      { t: 'follow', uri: uri(fresh, 'app.bsky.graph.follow'), author: fresh, subject: other },
      { t: 'like', uri: uri(fresh, 'app.bsky.feed.like'), author: fresh, subject: liked.uri },
    ])
    expect(new FollowGraph(ctx.db.sqlite).context(fresh).follows.has(other)).toBe(true)
    expect(ctx.db.sqlite.prepare('SELECT subject FROM reader_likes WHERE author = ?').pluck().all(fresh)).toEqual([liked.uri])
  })

  it('a mix record marks its author a reader to backfill, and a new block-list subscription asks for their list again', () => {
    const state = () => new ReaderStore(ctx.db.sqlite).state(reader)
    write([
      {
        t: 'mix',
        uri: uri(reader, 'app.skysift.feed.mix'),
        author: reader,
        feed: ctx.feeds[0].uri,
        agents: [{ agent: 'recency', weight: 10 }],
        createdAt: Date.now(),
        rev: '',
      },
    ])
    expect(state()).toMatchObject({ backfilledAt: null })
    expect(new ReaderStore(ctx.db.sqlite).pending(10)).toEqual([reader])
    // the backfill lands: its marker comes last, after the records, so its own block list does not ask again
    const list = `at://${other}/app.bsky.graph.list/${tid(Date.now())}`
    write([
      { t: 'listblock', uri: uri(reader, 'app.bsky.graph.listblock'), author: reader, list },
      { t: 'reader', did: reader, backfilledAt: 1234 },
    ])
    expect(state()).toMatchObject({ backfilledAt: 1234 })
    // a list nobody subscribed to, from the firehose: its members come with another backfill
    write([{ t: 'listblock', uri: uri(reader, 'app.bsky.graph.listblock'), author: reader, list: `at://${other}/app.bsky.graph.list/${tid(Date.now() + 5)}` }])
    expect(state()).toMatchObject({ backfilledAt: null })
  })

  it('forgets readers not seen for the retention time, with their graph', () => {
    const readers = new ReaderStore(ctx.db.sqlite)
    const longAgo = Date.now() - 40 * 86_400_000
    readers.touch(reader, longAgo)
    readers.touch(other)
    write([block(reader, blocked), block(other, blocked), { t: 'follow', uri: uri(reader, 'app.bsky.graph.follow'), author: reader, subject: blocked }])
    const likes = Array.from(
      { length: 5 },
      (_, i): IngestEvent => ({
        t: 'like',
        uri: `at://${other}/app.bsky.feed.like/${tid(Date.now() - i * 1000)}`,
        author: other,
        subject: `at://${blocked}/app.bsky.feed.post/${tid(Date.now())}`,
      }),
    )
    write(likes)
    const r = new ReaderRetention(ctx.db.sqlite, { readerRetentionMs: 30 * 86_400_000, maxLikes: 3 }).run()
    expect(r).toMatchObject({ readers: 1, likes: 2 })
    const q = (sql: string) => ctx.db.sqlite.prepare(sql).pluck().all()
    expect(q('SELECT did FROM readers')).toEqual([other])
    expect(q('SELECT author FROM blocks')).toEqual([other])
    expect(q('SELECT count(*) FROM follows')).toEqual([0])
    // the newest likes stay
    expect(q('SELECT uri FROM reader_likes ORDER BY at DESC')).toEqual(likes.slice(0, 3).map((l) => (l as { uri: string }).uri))
  })
})

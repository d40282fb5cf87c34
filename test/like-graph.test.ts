import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import { silentLogger } from '../src/logger.ts'
import type { FeedService } from '../src/feed/service.ts'
import { DROP, postKey } from '../src/score/sdk.ts'
import { LikeGraph, LikeGraphWriter } from '../src/store/like-graph.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { post as agentPost, postEvent, tid } from './support/builders.ts'
import { storeFeedService } from './support/feed-service.ts'
import { testConfig } from './support/resources.ts'

const did = (name: string) => `did:plc:${name.padEnd(24, 'x')}`
const [me, twin, stranger, friend, other] = ['me', 'twin', 'stranger', 'friend', 'other'].map(did)
let n = 0
const like = (author: string, subject: PostEvent): IngestEvent => ({
  t: 'like',
  uri: `at://${author}/app.bsky.feed.like/${tid(Date.now(), ++n)}`,
  author,
  subject: subject.uri,
})
const repost = (author: string, subject: PostEvent): IngestEvent => ({
  t: 'repost',
  uri: `at://${author}/app.bsky.feed.repost/${tid(Date.now(), ++n)}`,
  author,
  subject: subject.uri,
})
const follow = (a: string, s: string): IngestEvent => ({ t: 'follow', uri: `at://${a}/app.bsky.graph.follow/${tid(Date.now(), ++n)}`, author: a, subject: s })

describe('the like graph', () => {
  let ctx: AppContext
  let feeds: FeedService
  let writer: BatchWriter
  let batch = 0
  const write = (events: IngestEvent[]) => writer.write({ id: `b${++batch}`, events, scores: [], eventTime: Date.now() })

  // the reader and a like-minded "twin" share two niche posts; a stranger shares nothing with the reader
  const shared = [postEvent({ minutesAgo: 50, text: 'niche one' }), postEvent({ minutesAgo: 49, text: 'niche two' })]
  const twinsPick = postEvent({ minutesAgo: 30, text: 'the twin liked this' })
  const strangersPick = postEvent({ minutesAgo: 30, text: 'the stranger liked this' })
  const friendsPick = postEvent({ minutesAgo: 40, text: 'a friend reposted this' })

  let close: () => Promise<void>
  beforeAll(() => {
    ;({ ctx, feeds, close } = storeFeedService(() => ({ cacheTtlMs: 0 })))
    writer = new BatchWriter(ctx.db.sqlite)
    write([...shared, twinsPick, strangersPick, friendsPick])
    write([
      ...shared.map((p) => like(me, p)),
      ...shared.map((p) => like(twin, p)),
      like(twin, twinsPick),
      like(stranger, strangersPick),
      // equally liked: one like each from someone else
      like(other, twinsPick),
      like(other, strangersPick),
    ])
  })
  afterAll(() => close())

  it('keeps who liked what as integers, and forgets an unlike', () => {
    const graph = new LikeGraph(ctx.db.sqlite)
    expect(graph.coLikes(me)).toEqual(new Map([[postKey(twinsPick.uri), expect.any(Number)]]))
    const unlike = like(stranger, shared[0])
    write([unlike])
    expect([...graph.coLikes(me).keys()]).toContain(postKey(strangersPick.uri))
    write([{ t: 'delete', uri: unlike.t === 'like' ? unlike.uri : '', collection: 'app.bsky.feed.like' }])
    expect([...graph.coLikes(me).keys()]).toEqual([postKey(twinsPick.uri)])
  })

  it('weights like-minded readers by what they share: rare shared likes and selective likers count more', () => {
    const graph = new LikeGraph(ctx.db.sqlite)
    const extra = Array.from({ length: 30 }, (_, i) => postEvent({ minutesAgo: 20, text: `popular ${i}` }))
    const lurker = did('lurker')
    // someone who likes everything, including one of the reader's posts
    write([...extra, ...extra.map((p) => like(lurker, p)), like(lurker, shared[1])])
    const co = graph.coLikes(me)
    const lurkers = co.get(postKey(extra[0].uri))!
    expect(lurkers).toBeGreaterThan(0)
    expect(co.get(postKey(twinsPick.uri))!).toBeGreaterThan(lurkers * 3)
    // the reader's own likes are never recommended back
    expect(co.has(postKey(shared[0].uri))).toBe(false)
  })

  it('counts the friends who liked or reposted a post, once each', async () => {
    // follows are kept for subscribers
    await feeds.putMix(ctx.feeds[0], me, [{ agent: 'recency', weight: 1 }])
    write([follow(me, friend), follow(me, twin), repost(friend, friendsPick), like(friend, friendsPick)])
    const seen = new LikeGraph(ctx.db.sqlite).friendEngagement(me)
    expect(seen.get(postKey(friendsPick.uri))).toBe(1)
    expect(seen.get(postKey(twinsPick.uri))).toBe(1)
    expect(seen.has(postKey(strangersPick.uri))).toBe(false)
  })

  it('like-minded ranks a post liked by a like-minded reader above an equally liked post whose likers share nothing', async () => {
    const feed = ctx.feeds[0]
    await feeds.putMix(feed, me, [{ agent: 'like-minded', weight: 100 }])
    const order = feeds.skeleton(feed, me, 50).feed.map((i) => i.post)
    expect(order.indexOf(twinsPick.uri)).toBeGreaterThanOrEqual(0)
    expect(order.indexOf(twinsPick.uri)).toBeLessThan(order.indexOf(strangersPick.uri))
  })

  it('friends-liked ranks what people you follow engaged with first', async () => {
    const feed = ctx.feeds[0]
    await feeds.putMix(feed, me, [{ agent: 'friends-liked', weight: 100, options: { only: true } }])
    const order = feeds.skeleton(feed, me, 50).feed.map((i) => i.post)
    expect(new Set(order)).toEqual(new Set([friendsPick.uri, twinsPick.uri, ...shared.map((p) => p.uri)]))
  })
})

describe('friends-liked and like-minded as agents', () => {
  const ctx = new AppContext(testConfig({ dbPath: ':memory:' }), silentLogger)
  const now = Date.now()
  const posts = [agentPost(), agentPost(), agentPost()]
  const subscriber = {
    did: me,
    follows: new Set<string>(),
    followers: new Set<string>(),
    friendEngagement: new Map([
      [postKey(posts[0].uri), 1],
      [postKey(posts[1].uri), 3],
    ]),
    coLikes: new Map([[postKey(posts[2].uri), 0.25]]),
  }
  const run = (agent: string, options: Record<string, unknown>, sub?: typeof subscriber) => ctx.host.run(ctx.host.instance(agent, options), posts, now, sub)

  it('friends-liked scores log2(1 + friends), honours minFriends and only, and has no opinion for anonymous readers', () => {
    expect(run('friends-liked', {}, subscriber)).toEqual([1, 2, 0])
    expect(run('friends-liked', { minFriends: 2, only: true }, subscriber)).toEqual([DROP, 2, DROP])
    expect(run('friends-liked', {}, undefined)).toEqual([null, null, null])
  })

  it('like-minded scores the co-like weight, and has no opinion until the reader has likes to compare', () => {
    expect(run('like-minded', {}, subscriber)).toEqual([0, 0, 0.25])
    expect(run('like-minded', { only: true }, subscriber)).toEqual([DROP, DROP, 0.25])
    expect(run('like-minded', {}, { ...subscriber, coLikes: new Map() })).toEqual([null, null, null])
    expect(ctx.host.isPersonal(ctx.host.instance('like-minded'))).toBe(true)
  })
})

describe("the like graph's log", () => {
  it('reads the same before and after the store folds it, whatever links, unlinks and drops it holds', () => {
    // the same changes into a store that folds after every batch (as if rows were keyed at once) and one that folds now and then
    const open = () => new AppContext(testConfig({ dbPath: ':memory:' }), silentLogger)
    const eager = open()
    const lazy = open()
    const limits = { follows: 5, ownLikes: 3, likersPerPost: 2, neighbours: 3, likesPerNeighbour: 4 }
    const accounts = Array.from({ length: 8 }, (_, i) => did(`acct${i}`))
    const posts = Array.from({ length: 12 }, (_, i) => `at://${accounts[i % 8]}/app.bsky.feed.post/p${i}`)
    for (const c of [eager, lazy]) {
      const f = c.db.sqlite.prepare('INSERT INTO follows (uri, author, subject) VALUES (?, ?, ?)')
      for (const a of accounts.slice(1, 7)) f.run(`at://${accounts[0]}/app.bsky.graph.follow/${a.slice(8, 14)}`, accounts[0], a)
    }
    const writers = [new LikeGraphWriter(eager.db.sqlite), new LikeGraphWriter(lazy.db.sqlite)]
    const kept = new LikeGraph(lazy.db.sqlite, limits)
    const model = new Set<string>()
    let seed = 7
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), Math.floor(seed / 65536) % n)
    for (let step = 0; step < 80; step++) {
      const ops = Array.from({ length: 1 + rand(8) }, () => {
        const r = rand(20)
        return [r < 12 ? 'link' : r < 19 ? 'unlink' : 'drop', accounts[rand(8)], posts[rand(12)], rand(4) ? 'like' : 'repost'] as const
      })
      for (const [op, a, p, k] of ops) {
        if (op === 'link') model.add(`${p} ${a} ${k}`)
        else if (op === 'unlink') model.delete(`${p} ${a} ${k}`)
        else for (const key of model) if (key.startsWith(`${p} `)) model.delete(key)
      }
      for (const [i, c] of [eager, lazy].entries()) {
        const w = writers[i]
        c.db.sqlite.transaction(() => {
          for (const [op, a, p, k] of ops) {
            if (op === 'link') w.link(a, p, k)
            else if (op === 'unlink') w.unlink(a, p, k)
            else w.dropSubject(p)
          }
          w.flush()
        })()
      }
      writers[0].fold()
      if (step % 9 === 8) writers[1].fold()
      expect(Number(eager.db.sqlite.prepare('SELECT count(*) FROM like_log').pluck().get())).toBe(0)
      const fresh = new LikeGraph(lazy.db.sqlite, limits)
      const folded = new LikeGraph(eager.db.sqlite, limits)
      expect(fresh.size()).toBe(model.size)
      expect(folded.size()).toBe(model.size)
      expect(kept.friendEngagement(accounts[0])).toEqual(folded.friendEngagement(accounts[0]))
      for (const a of accounts) {
        const want = folded.coLikes(a)
        expect(kept.coLikes(a)).toEqual(want)
        expect(fresh.coLikes(a)).toEqual(want)
      }
    }
    expect(Number(lazy.db.sqlite.prepare('SELECT count(*) FROM like_log').pluck().get())).toBeGreaterThan(0)
    void eager.close()
    void lazy.close()
  })
})

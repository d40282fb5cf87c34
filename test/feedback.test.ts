import path from 'node:path'
import { lexicons } from '@atproto/api'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import type { PostEvent } from '../src/contracts/events.ts'
import { silentLogger } from '../src/logger.ts'
import { decodeFeedContext } from '../src/rank/feed-context.ts'
import { NUDGE_STEP } from '../src/rank/feedback.ts'
import type { FeedService } from '../src/feed/service.ts'
import { createServeApp } from '../src/runtime.ts'
import { loadSkysiftLexicons } from '../src/serve/lexicons.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'
import { postEvent } from './support/builders.ts'

const SERVICE = 'did:web:feeds.test'
const author = 'did:plc:fionafionafionafionafion'
const post = (text: string, minutesAgo: number): PostEvent => postEvent({ author, text, minutesAgo })

describe('subscribers in control: feedback, explanations, previews (real SQLite, Redis, did:web identities)', () => {
  let ctx: AppContext
  let app: Hono
  let feeds: FeedService
  let reader: TestUser
  let other: TestUser
  const own = loadSkysiftLexicons()
  const cleanups: (() => unknown)[] = []
  const posts = [
    post('the space telescope found water vapour', 50),
    post('a new study on climate and oceans', 40),
    post('physics of cats falling on their feet', 30),
    post('space station crew photos', 20),
    post('research funding news', 10),
  ]
  // an author with two older posts, for "open the author"
  const george = 'did:plc:georgegeorgegeorgegeorgeg'
  const [g1, g2] = [
    postEvent({ author: george, text: 'space probes and orbits', minutesAgo: 60 }),
    postEvent({ author: george, text: 'physics of tides', minutesAgo: 70 }),
  ]
  let FEED: string

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['reader', 'other'])
    reader = ids.users.reader
    other = ids.users.other
    cleanups.push(ids.close)
    ctx = new AppContext(
      testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, serviceDid: SERVICE, allowInsecureHttp: true }),
      silentLogger,
    )
    const served = createServeApp(ctx)
    app = served.app
    feeds = served.feeds
    cleanups.push(() => ctx.close(), served.close)
    FEED = ctx.feeds[1].uri // science: fixed topic filter, default mix recency + engagement
    new BatchWriter(ctx.db.sqlite).write({ id: 'seed', events: [...posts, g1, g2], scores: [], eventTime: Date.now() })
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const call = async (method: 'GET' | 'POST', nsid: string, who: TestUser | null, input?: Record<string, unknown>) => {
    const token = who ? await who.token(SERVICE, nsid) : undefined
    const url = method === 'GET' ? `/xrpc/${nsid}?${new URLSearchParams(input as Record<string, string>)}` : `/xrpc/${nsid}`
    const res = await app.request(url, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: method === 'POST' ? JSON.stringify(input ?? {}) : undefined,
    })
    return { status: res.status, body: (await res.json()) as any }
  }
  const page = async (who: TestUser | null) => {
    const r = await call('GET', 'app.bsky.feed.getFeedSkeleton', who, { feed: FEED, limit: '50' })
    expect(r.status).toBe(200)
    lexicons.assertValidXrpcOutput('app.bsky.feed.getFeedSkeleton', r.body)
    return r.body.feed as { post: string; feedContext: string }[]
  }
  const send = (who: TestUser, interactions: { item: string; event: string; feedContext?: string }[]) =>
    call('POST', 'app.bsky.feed.sendInteractions', who, { interactions: interactions.map((i) => ({ ...i, event: `app.bsky.feed.defs#${i.event}` })) })

  it('explains every item of a page, in plain language and on a web page', async () => {
    const items = await page(reader)
    expect(items).toHaveLength(posts.length + 2)
    for (const it of items) {
      const r = await call('GET', 'app.skysift.feed.explainItem', null, { feedContext: it.feedContext })
      expect(r.status).toBe(200)
      own.assertValidXrpcOutput('app.skysift.feed.explainItem', r.body)
      const attribution = decodeFeedContext(it.feedContext)!
      // every agent named in the item's attribution is explained with the same points
      expect(r.body.reasons.map((x: any) => [x.agent, x.value])).toEqual(attribution.contributions.map((c) => [c.label.replace(/#\d+$/, ''), c.value]))
      expect(r.body.text).toMatch(/^Shown because: /)
    }
    const top = items[0]
    expect((await call('GET', 'app.skysift.feed.explainItem', null, { feedContext: top.feedContext })).body.text).toMatch(/Recency.*\+\d+/)
    const html = await (await app.request(`/why?ctx=${encodeURIComponent(top.feedContext)}&post=${encodeURIComponent(top.post)}`)).text()
    expect(html).toContain('Why am I seeing this?')
    expect(html).toContain('Recency')
    expect((await app.request('/why?ctx=forged')).status).toBe(400)
    expect((await call('GET', 'app.skysift.feed.explainItem', null, { feedContext: 'v9|nope' })).body.error).toBe('UnknownContext')
  })

  it('"show less" removes the item at once; "show more" brings an item to the top of the next first page', async () => {
    const before = await page(reader)
    const [first, second, , fourth] = before
    expect((await send(reader, [{ item: second.post, event: 'requestLess', feedContext: second.feedContext }])).status).toBe(200)
    let after = (await page(reader)).map((i) => i.post)
    expect(after).not.toContain(second.post)
    expect(after).toHaveLength(before.length - 1)
    await send(reader, [{ item: fourth.post, event: 'requestMore', feedContext: fourth.feedContext }])
    after = (await page(reader)).map((i) => i.post)
    expect(after[0]).toBe(fourth.post)
    expect(after[1]).toBe(first.post)
    // other readers are not affected
    expect((await page(other)).map((i) => i.post)).toEqual(before.map((i) => i.post))
  })

  it('keeps seen posts below unseen ones', async () => {
    const items = await page(other)
    const before = items.map((i) => i.post)
    // the AppView passes each item's feedContext back; without one, the request id tells the feed
    const r = await call('GET', 'app.bsky.feed.getFeedSkeleton', other, { feed: FEED, limit: '50' })
    await send(other, [{ item: before[0], event: 'interactionSeen', feedContext: items[0].feedContext }])
    await call('POST', 'app.bsky.feed.sendInteractions', other, {
      interactions: [{ item: before[1], event: 'app.bsky.feed.defs#interactionSeen', reqId: r.body.reqId }],
    })
    const after = (await page(other)).map((i) => i.post)
    expect(after).toEqual([...before.slice(2), before[0], before[1]])
  })

  it('nudges the weights of the agents that lifted an item, visibly, and undoably', async () => {
    const mix0 = (await call('GET', 'app.skysift.feed.getMix', reader, { feed: FEED })).body
    own.assertValidXrpcOutput('app.skysift.feed.getMix', mix0)
    const recencyIdx = mix0.agents.findIndex((a: any) => a.agent === 'recency')
    // "show less" earlier and "show more" later cancel out; both items were lifted by recency
    const fb = await call('GET', 'app.skysift.feed.listFeedback', reader, { feed: FEED })
    own.assertValidXrpcOutput('app.skysift.feed.listFeedback', fb.body)
    expect(fb.body.feedback.map((f: any) => f.event)).toEqual(['more', 'less'])
    expect(fb.body.feedback[0].nudges).toContainEqual({ agent: 'recency', delta: NUDGE_STEP })
    const less = fb.body.feedback[1]
    const undo = await call('POST', 'app.skysift.feed.undoFeedback', reader, { id: less.id })
    expect(undo.body).toEqual({ undone: true })
    const mix1 = (await call('GET', 'app.skysift.feed.getMix', reader, { feed: FEED })).body
    expect(mix1.nudges[recencyIdx]).toBe(NUDGE_STEP)
    expect(mix1.fingerprint).not.toBe(mix0.fingerprint)
    // the waved-off item is back
    expect((await page(reader)).map((i) => i.post)).toContain(less.post)
    // undoing someone else's feedback does nothing
    expect((await call('POST', 'app.skysift.feed.undoFeedback', other, { id: fb.body.feedback[0].id })).body).toEqual({ undone: false })
  })

  it('previews a mix without saving it, and lists and deletes saved mixes', async () => {
    const preview = await call('POST', 'app.skysift.feed.previewMix', reader, {
      feed: FEED,
      agents: [{ agent: 'keyword', weight: 100, options: { include: ['cats'] } }],
      limit: 3,
    })
    expect(preview.status, JSON.stringify(preview.body)).toBe(200)
    own.assertValidXrpcOutput('app.skysift.feed.previewMix', preview.body)
    expect(preview.body.feed).toHaveLength(3)
    expect(preview.body.feed[0].post).toBe(posts[2].uri)
    expect((await call('GET', 'app.skysift.feed.listMixes', reader)).body.mixes).toEqual([])
    const bad = await call('POST', 'app.skysift.feed.previewMix', reader, { feed: FEED, agents: [{ agent: 'keyword', weight: 100, options: { include: 5 } }] })
    expect(bad.body.error).toBe('InvalidMix')

    await call('POST', 'app.skysift.feed.putMix', reader, { feed: FEED, agents: [{ agent: 'recency', weight: 40 }] })
    const listed = (await call('GET', 'app.skysift.feed.listMixes', reader)).body
    own.assertValidXrpcOutput('app.skysift.feed.listMixes', listed)
    expect(listed.mixes).toHaveLength(1)
    expect(listed.mixes[0]).toMatchObject({ feed: FEED, source: 'private', agents: [{ agent: 'recency', weight: 40 }] })
    expect((await call('POST', 'app.skysift.feed.deleteMix', reader, { feed: FEED })).body).toEqual({ deleted: true })
    expect((await call('GET', 'app.skysift.feed.getMix', reader, { feed: FEED })).body.source).toBe('default')
  })

  it('accepts every interaction the app sends (and events it may send later), shows them, and undoes each', async () => {
    const third = await startIdentities(['third'])
    cleanups.push(third.close)
    const who = third.users.third
    const items = await page(who)
    const events = [
      'clickthroughItem',
      'clickthroughAuthor',
      'clickthroughReposter',
      'clickthroughEmbed',
      'interactionLike',
      'interactionRepost',
      'interactionReply',
      'interactionQuote',
      'interactionShare',
      'interactionSeen',
      'interactionSomethingNew',
    ]
    // no feedContext and no reqId: the request's `feed` says which feed the items came from
    const r = await call('POST', 'app.bsky.feed.sendInteractions', who, {
      feed: FEED,
      interactions: events.map((e, i) => ({ item: items[i % items.length].post, event: `app.bsky.feed.defs#${e}` })),
    })
    expect(r.status).toBe(200)
    const fb = await call('GET', 'app.skysift.feed.listFeedback', who, { feed: FEED })
    own.assertValidXrpcOutput('app.skysift.feed.listFeedback', fb.body)
    expect(fb.body.feedback.map((f: any) => f.event).reverse()).toEqual([
      'click',
      'author',
      'reposter',
      'embed',
      'like',
      'repost',
      'reply',
      'quote',
      'share',
      'app.bsky.feed.defs#interactionSomethingNew',
    ])
    // every one can be undone
    for (const f of fb.body.feedback) expect((await call('POST', 'app.skysift.feed.undoFeedback', who, { id: f.id })).body).toEqual({ undone: true })
    expect((await call('GET', 'app.skysift.feed.listFeedback', who, { feed: FEED })).body.feedback.every((f: any) => f.undone)).toBe(true)
  })

  it('lifts the next post of an author the reader opened from the feed, and nudges agents a little for a like', async () => {
    const ids = await startIdentities(['fourth'])
    cleanups.push(ids.close)
    const who = ids.users.fourth
    const before = await page(who)
    expect(before.slice(-2).map((i) => i.post)).toEqual([g1.uri, g2.uri]) // the oldest come last
    // opened george's profile from his newer post: that post counts as seen, his next one rises to the top
    await send(who, [{ item: g1.uri, event: 'clickthroughAuthor', feedContext: before[before.length - 2].feedContext }])
    const after = (await page(who)).map((i) => i.post)
    expect(after[0]).toBe(g2.uri)
    expect(after[after.length - 1]).toBe(g1.uri)
    // a like nudges the agents that lifted the item, by less than a "show more"
    const mixBefore = (await call('GET', 'app.skysift.feed.getMix', who, { feed: FEED })).body
    const recency = mixBefore.agents.findIndex((a: any) => a.agent === 'recency')
    await send(who, [{ item: before[1].post, event: 'interactionLike', feedContext: before[1].feedContext }])
    const mixAfter = (await call('GET', 'app.skysift.feed.getMix', who, { feed: FEED })).body
    const moved = mixAfter.nudges[recency] - mixBefore.nudges[recency]
    expect(moved).toBeGreaterThan(0)
    expect(moved).toBeLessThan(NUDGE_STEP)
  })

  it("leaves deleted posts out of a reader's own order, deleted before or after it was made", async () => {
    const items = await page(reader)
    const posts = items.map((i) => i.post)
    const remove = (uri: string) =>
      new BatchWriter(ctx.db.sqlite).write({
        id: `del-${uri}`,
        events: [{ t: 'delete', uri, collection: 'app.bsky.feed.post' }],
        scores: [],
        eventTime: Date.now(),
      })
    // deleted after the shared list was built, before the reader's order is made from it (new feedback makes it anew)
    remove(posts[1])
    await send(reader, [{ item: posts[0], event: 'interactionSeen', feedContext: items[0].feedContext }])
    let after = (await page(reader)).map((i) => i.post)
    expect(after).not.toContain(posts[1])
    expect(after).toContain(posts[2])
    // deleted after the reader's order was made
    remove(posts[2])
    after = (await page(reader)).map((i) => i.post)
    expect(after).not.toContain(posts[1])
    expect(after).not.toContain(posts[2])
    expect(after.length).toBeGreaterThan(0)
  })

  it("serves a reader's own order of the list before while the rebuilt list's is made, then the new one", async () => {
    const before = (await page(reader)).map((i) => i.post)
    const fresh = post('space probe news, just in', 1)
    new BatchWriter(ctx.db.sqlite).write({ id: 'fresh', events: [fresh], scores: [], eventTime: Date.now() })
    const science = ctx.feeds[1]
    feeds.build(science, feeds.mixFor(science, reader.did).mix, reader.did)
    // the shared list changed, the reader's feedback did not: the order made before is served at once
    expect((await page(reader)).map((i) => i.post)).toEqual(before)
    await new Promise((r) => setImmediate(r))
    const after = (await page(reader)).map((i) => i.post)
    expect(after).toContain(fresh.uri)
    expect(after.length).toBe(before.length + 1)
  })

  it('requires a token for feedback and refuses malformed interactions', async () => {
    const r = await app.request('/xrpc/app.bsky.feed.sendInteractions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"interactions":[]}',
    })
    expect(r.status).toBe(401)
    const bad = await call('POST', 'app.bsky.feed.sendInteractions', reader, { interactions: [{ item: 42 }] })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toBe('InvalidRequest')
  })
})

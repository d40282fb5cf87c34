import path from 'node:path'
import { Secp256k1Keypair } from '@atproto/crypto'
import { lexicons } from '@atproto/api'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import type { PostEvent } from '../src/contracts/events.ts'
import { silentLogger } from '../src/logger.ts'
import { decodeFeedContext } from '../src/rank/feed-context.ts'
import { createServeApp } from '../src/runtime.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'
import { postEvent } from './support/builders.ts'

const SERVICE = 'did:web:feeds.test'
const PUBLISHER = 'did:plc:publisherpublisherpublish'
const FRESH = `at://${PUBLISHER}/app.bsky.feed.generator/fresh`
const SCIENCE = `at://${PUBLISHER}/app.bsky.feed.generator/science`
const LXM = { skeleton: 'app.bsky.feed.getFeedSkeleton', getMix: 'app.skysift.feed.getMix', putMix: 'app.skysift.feed.putMix' }
const author = 'did:plc:carolcarolcarolcarolcaro'

const post = (text: string, minutesAgo: number, p: Partial<PostEvent> = {}): PostEvent => postEvent({ author, text, minutesAgo, ...p })

describe('serving: feed skeletons, mixes and auth (real SQLite, Redis, did:web identities)', () => {
  let ctx: AppContext
  let app: Hono
  let users: Record<string, TestUser>
  let writer: BatchWriter
  const cleanups: (() => unknown)[] = []
  const posts = {
    telescope: post('The new telescope images of the Crab nebula are stunning', 50),
    physics: post('A physics lecture on quantum tunnelling, recorded', 40),
    research: post('Our research on coral reefs is out today', 30),
    spam: post('science giveaway!!! click now', 20),
    japanese: post('宇宙の science ニュース', 10, { langs: ['ja'] }),
    newest: post('space weather update: a mild solar storm tonight', 1),
    cats: post('my cat knocked the plant over again', 5),
  }

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['alice', 'bob'])
    users = ids.users
    cleanups.push(ids.close)
    const config = testConfig({
      dbPath: path.join(t.dir, 'skysift.db'),
      queuePrefix: q.prefix,
      serviceDid: SERVICE,
      publicUrl: 'https://feeds.test',
      publisherDid: PUBLISHER,
      allowInsecureHttp: true,
      cacheTtlMs: 60_000,
    })
    ctx = new AppContext(config, silentLogger)
    const served = createServeApp(ctx)
    app = served.app
    cleanups.push(() => ctx.close(), served.close)
    writer = new BatchWriter(ctx.db.sqlite)
    writer.write({ id: 'seed', events: Object.values(posts), scores: [], eventTime: Date.now() })
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const get = async (url: string, token?: string) => {
    const res = await app.request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} })
    return { status: res.status, body: (await res.json()) as any }
  }
  const skeleton = async (feed: string, opts: { token?: string; limit?: number; cursor?: string } = {}) => {
    const q = new URLSearchParams({ feed, limit: String(opts.limit ?? 50), ...(opts.cursor ? { cursor: opts.cursor } : {}) })
    const r = await get(`/xrpc/app.bsky.feed.getFeedSkeleton?${q}`, opts.token)
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    lexicons.assertValidXrpcOutput(LXM.skeleton, r.body)
    return r.body as { feed: { post: string; feedContext: string }[]; cursor?: string; reqId: string }
  }
  const uris = (s: { feed: { post: string }[] }) => s.feed.map((i) => i.post)
  const putMix = async (token: string | null, body: unknown) => {
    const res = await app.request('/xrpc/app.skysift.feed.putMix', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as any }
  }

  it('describes itself: did:web document and the hosted feeds', async () => {
    const did = await get('/.well-known/did.json')
    expect(did.body).toMatchObject({ id: SERVICE, service: [{ id: '#bsky_fg', type: 'BskyFeedGenerator', serviceEndpoint: 'https://feeds.test' }] })
    const d = await get('/xrpc/app.bsky.feed.describeFeedGenerator')
    lexicons.assertValidXrpcOutput('app.bsky.feed.describeFeedGenerator', d.body)
    expect(d.body.did).toBe(SERVICE)
    expect(d.body.feeds).toEqual([{ uri: FRESH }, { uri: SCIENCE }])
  })

  it('serves the default mix to anonymous readers: the science feed keeps only English science posts, newest first', async () => {
    const s = await skeleton(SCIENCE)
    expect(uris(s)).toEqual([posts.newest.uri, posts.research.uri, posts.physics.uri, posts.telescope.uri])
    expect(s.reqId).toMatch(/^[0-9a-f]{16}$/)
    for (const item of s.feed) expect(decodeFeedContext(item.feedContext)).not.toBeNull()
    // the fresh feed has everything, newest first
    expect(uris(await skeleton(FRESH))[0]).toBe(posts.newest.uri)
  })

  it('answers bad requests with lexicon-shaped 400s', async () => {
    const cases: [string, string][] = [
      [`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(`at://${PUBLISHER}/app.bsky.feed.generator/nope`)}`, 'UnknownFeed'],
      ['/xrpc/app.bsky.feed.getFeedSkeleton?feed=not-a-uri', 'InvalidRequest'],
      ['/xrpc/app.bsky.feed.getFeedSkeleton', 'InvalidRequest'],
      [`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FRESH)}&limit=0`, 'InvalidRequest'],
      [`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FRESH)}&limit=101`, 'InvalidRequest'],
      [`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FRESH)}&limit=abc`, 'InvalidRequest'],
      [`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FRESH)}&limit=5&limit=6`, 'InvalidRequest'],
      [`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FRESH)}&cursor=%3Cscript%3E`, 'InvalidRequest'],
    ]
    for (const [url, error] of cases) {
      const r = await get(url)
      expect(r.status, url).toBe(400)
      expect(r.body.error, url).toBe(error)
      expect(typeof r.body.message).toBe('string')
    }
  })

  it('pages through a snapshot without repeats, even when the list is refreshed in between', async () => {
    const first = await skeleton(FRESH, { limit: 2 })
    expect(first.cursor).toBeTruthy()
    // a new post arrives and the list is rebuilt before the reader asks for page 2
    writer.write({ id: 'late', events: [post('breaking: late news', 0)], scores: [], eventTime: Date.now() })
    const f = ctx.feeds.find((x) => x.uri === FRESH)!
    const { openLists } = await import('../src/feed/open-lists.ts')
    openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config).lists.build(f, f.defaults)
    const seen = [...uris(first)]
    let cursor = first.cursor
    while (cursor) {
      const page = await skeleton(FRESH, { limit: 2, cursor })
      seen.push(...uris(page))
      cursor = page.cursor
    }
    expect(new Set(seen).size).toBe(seen.length)
    expect(seen.sort()).toEqual(
      Object.values(posts)
        .map((p) => p.uri)
        .sort(),
    )
    // a new first page shows the refreshed list, with the late post on top
    expect((await skeleton(FRESH, { limit: 1 })).feed[0].post).not.toBe(first.feed[0].post)
  })

  it('requires a valid token for private methods', async () => {
    expect((await putMix(null, { feed: SCIENCE, agents: [] })).status).toBe(401)
    const forged = await users.alice.token(SERVICE, LXM.putMix, { keypair: await Secp256k1Keypair.create() })
    const r = await putMix(forged, { feed: SCIENCE, agents: [{ agent: 'recency', weight: 10 }] })
    expect(r.status).toBe(401)
    expect(r.body.error).toBe('BadJwtSignature')
    const wrongLxm = await users.alice.token(SERVICE, LXM.getMix)
    expect((await putMix(wrongLxm, { feed: SCIENCE, agents: [] })).body.error).toBe('BadJwtLexiconMethod')
    const wrongAud = await users.alice.token('did:web:someone.else', LXM.putMix)
    expect((await putMix(wrongAud, { feed: SCIENCE, agents: [] })).body.error).toBe('BadJwtAudience')
    const expired = await users.alice.token(SERVICE, LXM.putMix, { exp: Math.floor(Date.now() / 1000) - 10 })
    expect((await putMix(expired, { feed: SCIENCE, agents: [] })).body.error).toBe('JwtExpired')
  })

  it('rejects an invalid mix with the bad field named, and keeps the old one', async () => {
    const token = await users.bob.token(SERVICE, LXM.putMix)
    const bad: [unknown, RegExp][] = [
      [{ feed: SCIENCE, agents: [{ agent: 'nope', weight: 1 }] }, /agents\.0: unknown agent "nope"/],
      [
        {
          feed: SCIENCE,
          agents: [
            { agent: 'recency', weight: 10 },
            { agent: 'keyword', weight: 5, options: { include: 'cats' } },
          ],
        },
        /agents\.1\.options\.include/,
      ],
      [{ feed: SCIENCE, agents: [{ agent: 'recency', weight: 500 }] }, /^agents\.0\.weight: /],
      [{ feed: SCIENCE, agents: [{ agent: 'recency', weight: 'high' }] }, /^agents\.0\.weight: /],
      [{ feed: SCIENCE }, /agents/],
      ['{"feed":', /JSON/],
    ]
    for (const [body, msg] of bad) {
      const r = await putMix(token, body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.body.message).toMatch(msg)
      // a problem inside the mix is InvalidMix; a malformed request is InvalidRequest
      expect(r.body.error).toBe(/^\^?agents\\\./.test(msg.source) ? 'InvalidMix' : 'InvalidRequest')
    }
    const huge = await putMix(token, { feed: SCIENCE, agents: [{ agent: 'keyword', weight: 1, options: { include: Array(20000).fill('x') } }] })
    expect(huge.status).toBe(413)
    const mine = await get(`/xrpc/app.skysift.feed.getMix?feed=${encodeURIComponent(SCIENCE)}`, await users.bob.token(SERVICE, LXM.getMix))
    expect(mine.body.source).toBe('default')
  })

  it("applies a subscriber's mix to their feed only, and rejected tokens get the default order", async () => {
    const anon = uris(await skeleton(SCIENCE))
    // alice pushes telescope posts to the top and keeps recency small
    const saved = await putMix(await users.alice.token(SERVICE, LXM.putMix), {
      feed: SCIENCE,
      agents: [
        { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
        { agent: 'recency', weight: 10 },
      ],
    })
    expect(saved.status, JSON.stringify(saved.body)).toBe(200)
    expect(saved.body).toMatchObject({
      feed: SCIENCE,
      agents: [
        { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
        { agent: 'recency', weight: 10 },
      ],
    })
    const got = await get(`/xrpc/app.skysift.feed.getMix?feed=${encodeURIComponent(SCIENCE)}`, await users.alice.token(SERVICE, LXM.getMix))
    expect(got.body).toMatchObject({ source: 'private', fingerprint: saved.body.fingerprint, agents: saved.body.agents })

    const mine = await skeleton(SCIENCE, { token: await users.alice.token(SERVICE, LXM.skeleton) })
    expect(uris(mine)[0]).toBe(posts.telescope.uri)
    // her mix replaces the default (no language filter) but keeps the feed's fixed topic filter
    expect(uris(mine).slice(1)).toEqual([posts.newest.uri, posts.japanese.uri, posts.research.uri, posts.physics.uri])
    expect(uris(mine)).not.toContain(posts.spam.uri)
    expect(decodeFeedContext(mine.feed[0].feedContext)?.contributions.find((c) => c.label === 'keyword')?.value).toBe(100)

    // bob still gets the default, and so does anyone presenting a bad token as alice
    expect(uris(await skeleton(SCIENCE, { token: await users.bob.token(SERVICE, LXM.skeleton) }))).toEqual(anon)
    const badTokens = [
      await users.alice.token(SERVICE, LXM.skeleton, { keypair: await Secp256k1Keypair.create() }),
      await users.alice.token('did:web:elsewhere', LXM.skeleton),
      await users.alice.token(SERVICE, LXM.putMix),
      await users.alice.token(SERVICE, LXM.skeleton, { exp: Math.floor(Date.now() / 1000) - 5 }),
      'not-a-jwt',
    ]
    for (const token of badTokens) expect(uris(await skeleton(SCIENCE, { token }))).toEqual(anon)
  })

  it('drops a deleted post from every cached list at once', async () => {
    const before = uris(await skeleton(SCIENCE))
    expect(before).toContain(posts.physics.uri)
    writer.write({ id: 'del', events: [{ t: 'delete', uri: posts.physics.uri, collection: 'app.bsky.feed.post' }], scores: [], eventTime: Date.now() })
    expect(uris(await skeleton(SCIENCE))).toEqual(before.filter((u) => u !== posts.physics.uri))
    expect(uris(await skeleton(SCIENCE, { token: await users.alice.token(SERVICE, LXM.skeleton) }))).not.toContain(posts.physics.uri)
  })

  it("applies the interests a reader's app forwards when the reader has no mix of their own, and only for signed-in readers", async () => {
    const page = async (headers: Record<string, string>, token?: string) => {
      const res = await app.request(`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FRESH)}&limit=3`, {
        headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      })
      expect(res.status).toBe(200)
      return ((await res.json()) as { feed: { post: string }[] }).feed.map((i) => i.post)
    }
    const bob = () => users.bob.token(SERVICE, LXM.skeleton)
    // newest first without interests (the cat post is not the newest)
    expect((await page({}, await bob()))[0]).not.toBe(posts.cats.uri)
    // the pets interest lifts the cat post over newer ones; the newer header wins over the older one
    expect((await page({ 'x-bsky-topics': 'pets,nonsense' }, await bob()))[0]).toBe(posts.cats.uri)
    expect((await page({ 'x-bsky-topics': 'science', 'x-atproto-bsky-topics': 'Pets' }, await bob()))[0]).toBe(posts.cats.uri)
    // a stranger's header changes nothing for anonymous readers
    expect(await page({ 'x-bsky-topics': 'pets' })).toEqual(await page({}))
  })

  it('reports health of SQLite and Redis', async () => {
    const h = await get('/xrpc/_health')
    expect(h.status).toBe(200)
    expect(h.body).toMatchObject({ ok: true, checks: { sqlite: 'ok', redis: 'ok' } })
  })
})

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import type { IngestEvent } from '../src/contracts/events.ts'
import { edgeKeys, MAX_WRITES_BACKLOG_CHARS, READER_EXCLUDED_FIELD, readerFeedField, type EdgeSnapshot } from '../src/contracts/edge.ts'
import { redisOptions } from '../src/contracts/queues.ts'
import { createEdge } from '../src/edge-runtime.ts'
import { EdgeView } from '../src/serve/edge/edge-view.ts'
import { openLists } from '../src/feed/open-lists.ts'
import { silentLogger } from '../src/logger.ts'
import { decodeCursor } from '../src/rank/cursor.ts'
import { createServeApp } from '../src/runtime.ts'
import { readProcessReports } from '../src/status/report.ts'
import { ReaderFilter } from '../src/store/reader-filter.ts'
import { storedSecret } from '../src/store/secrets.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent } from './support/builders.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { collectJsonLines, queuePrefix, REDIS_URL, tempDir, testConfig, waitFor } from './support/resources.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = path.join(ROOT, 'src/cli.ts')
const SERVICE = 'did:web:feeds.test'
const PUBLISHER = 'did:plc:publisherpublisherpublish'
const FRESH = `at://${PUBLISHER}/app.bsky.feed.generator/fresh`
const SCIENCE = `at://${PUBLISHER}/app.bsky.feed.generator/science`
const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const INTERACTIONS = 'app.bsky.feed.sendInteractions'
const GET_MIX = 'app.skysift.feed.getMix'
const AUTHORS = ['did:plc:annannannannannannannannan', 'did:plc:benbenbenbenbenbenbenbenbe', 'did:plc:calcalcalcalcalcalcalcalca']

interface Page {
  feed: { post: string; feedContext: string }[]
  cursor?: string
  reqId: string
}

describe('edge nodes: serving what a primary published to Redis, here by hand through the contract (real SQLite primary, Redis, did:web identities)', () => {
  let ctx: AppContext
  let primary: Hono
  let primaryServer: ServerType
  let primaryUrl = ''
  let edgeCtx: AppContext
  let edge: ReturnType<typeof createEdge>
  let redis: Redis
  let users: Record<string, TestUser>
  let writer: BatchWriter
  let prefix = ''
  let edgeDbPath = ''
  let dbPath = ''
  const cleanups: (() => unknown)[] = []
  // 18 posts by three authors, a minute apart: the fresh feed lists them newest first
  const posts = Array.from({ length: 18 }, (_, i) => postEvent({ author: AUTHORS[i % 3], text: `post number ${i}`, minutesAgo: 60 - i }))

  const keys = () => edgeKeys(prefix)

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    prefix = q.prefix
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['alice', 'bob'])
    users = ids.users
    cleanups.push(ids.close)
    dbPath = path.join(t.dir, 'skysift.db')
    const common = {
      queuePrefix: q.prefix,
      serviceDid: SERVICE,
      publicUrl: 'https://feeds.test',
      publisherDid: PUBLISHER,
      allowInsecureHttp: true,
      cacheTtlMs: 600_000,
    }
    ctx = new AppContext(testConfig({ ...common, dbPath }), silentLogger)
    const served = createServeApp(ctx)
    primary = served.app
    cleanups.push(() => ctx.close(), served.close)
    writer = new BatchWriter(ctx.db.sqlite)
    writer.write({ id: 'seed', events: posts, scores: [], eventTime: Date.now() })
    primaryServer = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: primary.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    cleanups.push(() => new Promise<void>((r) => primaryServer.close(() => r())))
    primaryUrl = `http://127.0.0.1:${(primaryServer.address() as AddressInfo).port}`

    // the edge: the same deployment's settings, but a database path in a folder that does not exist
    edgeDbPath = path.join(t.dir, 'not-here', 'skysift.db')
    edgeCtx = new AppContext(testConfig({ ...common, dbPath: edgeDbPath, primaryUrl }), silentLogger)
    edge = createEdge(edgeCtx)
    await edge.start()
    cleanups.push(
      () => edgeCtx.close(),
      () => edge.close(),
    )
    redis = new Redis(redisOptions(REDIS_URL))
    cleanups.push(() => redis.disconnect())
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const request = async (app: Hono, url: string, init: { token?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {}) => {
    const res = await app.request(url, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
    })
    const text = await res.text()
    let body: any = text
    try {
      body = JSON.parse(text)
    } catch {
      // a page
    }
    return { status: res.status, body, headers: res.headers }
  }
  const skeletonUrl = (feed: string, limit: number, cursor?: string) =>
    `/xrpc/${SKELETON}?${new URLSearchParams({ feed, limit: String(limit), ...(cursor ? { cursor } : {}) })}`
  const page = async (app: Hono, feed: string, opts: { reader?: TestUser; limit?: number; cursor?: string } = {}): Promise<Page> => {
    const token = opts.reader ? await opts.reader.token(SERVICE, SKELETON) : undefined
    const r = await request(app, skeletonUrl(feed, opts.limit ?? 4, opts.cursor), { token })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    return r.body as Page
  }
  /** Every page of a feed, as [items, cursor] per page (request ids differ by node, and are left out). */
  const allPages = async (app: Hono, feed: string, opts: { reader?: TestUser; limit?: number } = {}) => {
    const out: { posts: string[]; cursor?: string }[] = []
    let cursor: string | undefined
    do {
      const p = await page(app, feed, { ...opts, cursor })
      out.push({ posts: p.feed.map((i) => `${i.post} ${i.feedContext}`), cursor: p.cursor })
      cursor = p.cursor
    } while (cursor && out.length < 50)
    return out
  }

  /** What the primary publishes, by hand through the contract: a snapshot as stored in SQLite. */
  const lists = () => openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config).pages
  const publishSnapshot = async (id: number) => {
    const pages = lists()
    const key = pages.snapshotKey(id)!
    const { items, checkedAt } = pages.storedList(id)
    const snap: EdgeSnapshot = { feed: key.feed, key: key.key, builtAt: Date.now(), checkedAt, items: items.map((i) => [i.uri, i.context]) }
    await redis.set(keys().snapshot(id), JSON.stringify(snap), 'PX', 3_600_000)
  }
  const publishMeta = () => redis.hset(keys().meta, 'cursor', storedSecret(ctx.db.sqlite, 'cursor'), 'primary', String(Date.now()), 'epoch', 'e1')
  /** The snapshot the primary served a first page from (its cursor names it). */
  const snapshotOf = (p: Page) => decodeCursor(p.cursor!)!.snapshot
  const publishAnon = async (feed: string) => {
    const id = snapshotOf(await page(primary, feed))
    await publishSnapshot(id)
    await redis.hset(keys().anon, feed, String(id))
    return id
  }
  const publishReader = async (reader: TestUser, feed: string) => {
    const id = snapshotOf(await page(primary, feed, { reader }))
    await publishSnapshot(id)
    const blocked = [...ReaderFilter.of(ctx.db.sqlite).blockedFor(reader.did)]
    await redis.hset(keys().reader(reader.did), readerFeedField(feed), String(id), READER_EXCLUDED_FIELD, JSON.stringify(blocked))
    return id
  }
  const write = (id: string, events: IngestEvent[]) => writer.write({ id, events, scores: [], eventTime: Date.now() })
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

  it('answers NotReady (503), not an empty feed, until the primary has published', async () => {
    const r = await request(edge.app, skeletonUrl(FRESH, 4))
    expect(r.status).toBe(503)
    expect(r.body.error).toBe('NotReady')
    expect(r.body.message).toMatch(/primary has not published/)
  })

  it('describes itself as the primary does', async () => {
    for (const url of ['/.well-known/did.json', '/xrpc/app.bsky.feed.describeFeedGenerator']) {
      const [a, b] = [await request(primary, url), await request(edge.app, url)]
      expect(b.status, url).toBe(200)
      expect(b.body, url).toEqual(a.body)
    }
  })

  it('serves anonymous readers the pages the primary serves, with the same cursors', async () => {
    await publishMeta()
    await publishAnon(FRESH)
    // an edge reads the pointers again at most every second (sooner when one is missing, at most every 100 ms)
    await waitFor(async () => (await request(edge.app, skeletonUrl(FRESH, 4))).status === 200, 'the edge to see the published list', 5000)
    const want = await allPages(primary, FRESH)
    expect(want.length).toBeGreaterThan(3)
    expect(await allPages(edge.app, FRESH)).toEqual(want)
    const first = await page(edge.app, FRESH)
    expect(first.reqId).toMatch(/^[0-9a-f]{6}00[0-9a-f]{8}$/) // names the feed's place in the feeds file, as the primary's do
    // a cursor from the primary pages on the edge, and the other way round
    const p1 = await page(primary, FRESH)
    expect(await page(edge.app, FRESH, { cursor: p1.cursor })).toMatchObject({ feed: (await page(primary, FRESH, { cursor: p1.cursor })).feed })
    const e2 = await page(edge.app, FRESH, { cursor: first.cursor })
    expect((await page(primary, FRESH, { cursor: e2.cursor })).feed).toEqual((await page(edge.app, FRESH, { cursor: e2.cursor })).feed)
  })

  it('refuses bad requests as the primary does', async () => {
    const cases = [
      skeletonUrl(`at://${PUBLISHER}/app.bsky.feed.generator/nope`, 4),
      '/xrpc/app.bsky.feed.getFeedSkeleton?feed=not-a-uri',
      '/xrpc/app.bsky.feed.getFeedSkeleton',
      skeletonUrl(FRESH, 0),
      `${skeletonUrl(FRESH, 4)}&limit=5`,
      skeletonUrl(FRESH, 4, '<script>'),
      skeletonUrl(FRESH, 4, 'x'.repeat(201)),
      // a cursor of another feed, and one made up
      skeletonUrl(SCIENCE, 4, (await page(primary, FRESH)).cursor),
      skeletonUrl(FRESH, 4, `${(await page(primary, FRESH)).cursor!.slice(0, -3)}AAA`),
    ]
    for (const url of cases) {
      const [a, b] = [await request(primary, url), await request(edge.app, url)]
      expect(a.status, url).toBe(400)
      expect({ status: b.status, body: b.body }, url).toEqual({ status: a.status, body: a.body })
    }
    // a cursor made for another reader
    const alices = (await page(primary, FRESH, { reader: users.alice })).cursor
    const asBob = await request(edge.app, skeletonUrl(FRESH, 4, alices), { token: await users.bob.token(SERVICE, SKELETON) })
    expect(asBob.status).toBe(400)
    expect(asBob.body.message).toMatch(/not valid for this feed and reader/)
  })

  it('serves a signed-in reader the primary has not placed the anonymous list, and tells the primary (touch)', async () => {
    const want = await allPages(primary, FRESH, { reader: users.bob })
    expect(await allPages(edge.app, FRESH, { reader: users.bob })).toEqual(want)
    const touched = async () => (await redis.xrange(keys().touch, '-', '+')).map(([, f]) => `${f[1]}|${f[3]}`)
    await waitFor(async () => (await touched()).includes(`${FRESH}|${users.bob.did}`), 'a touch for the signed-in reader', 5000)
    const seen = await touched()
    expect(seen).toContain(`${FRESH}|`)
    // at most one per reader and feed a second
    expect(seen.filter((s) => s === `${FRESH}|${users.bob.did}`).length).toBe(1)
  })

  it("serves a placed reader their own list (feedback overlay) less the authors they block, with the primary's pages and cursors", async () => {
    // alice waves a post off and blocks an author: on the primary, her pages change
    const gone = posts[15].uri
    const sent = await request(primary, `/xrpc/${INTERACTIONS}`, {
      method: 'POST',
      token: await users.alice.token(SERVICE, INTERACTIONS),
      body: { feed: FRESH, interactions: [{ item: gone, event: 'app.bsky.feed.defs#requestLess' }] },
    })
    expect(sent.status).toBe(200)
    write('reader', [{ t: 'reader', did: users.alice.did, backfilledAt: Date.now() }])
    write('block', [{ t: 'block', uri: `at://${users.alice.did}/app.bsky.graph.block/3kblockblock22`, author: users.alice.did, subject: AUTHORS[1] }])
    // the primary's filter reads a reader's blocks again within a few seconds
    const shownBy = async () => (await allPages(primary, FRESH, { reader: users.alice })).flatMap((p) => p.posts)
    await waitFor(async () => !(await shownBy()).some((s) => s.includes(AUTHORS[1])), 'the primary to apply the block', 10_000, 200)
    const want = await allPages(primary, FRESH, { reader: users.alice })
    const shown = want.flatMap((p) => p.posts)
    expect(shown.some((s) => s.startsWith(gone))).toBe(false)
    expect(shown.some((s) => s.includes(AUTHORS[1]))).toBe(false)
    expect(shown.length).toBe(11) // 18, less 6 by the blocked author, less the one waved off

    const anonId = Number(await redis.hget(keys().anon, FRESH))
    expect(await publishReader(users.alice, FRESH)).not.toBe(anonId)
    await pause(1100) // the edge reads a reader's placement again at most every second
    expect(await allPages(edge.app, FRESH, { reader: users.alice })).toEqual(want)
    // her cursors page on either node
    const p1 = await page(primary, FRESH, { reader: users.alice })
    expect((await page(edge.app, FRESH, { reader: users.alice, cursor: p1.cursor })).feed).toEqual(
      (await page(primary, FRESH, { reader: users.alice, cursor: p1.cursor })).feed,
    )
  })

  it('leaves out a post deleted after its snapshot was published, as soon as the deletion is in `changes`', async () => {
    const first = await page(edge.app, FRESH)
    const victim = first.feed[1].post
    write('del', [{ t: 'delete', uri: victim, collection: 'app.bsky.feed.post' }])
    await redis.xadd(keys().changes, '*', 'k', 'del', 'uri', victim)
    await waitFor(async () => !(await page(edge.app, FRESH)).feed.some((i) => i.post === victim), 'the deleted post to leave the edge', 5000)
    const want = await allPages(primary, FRESH)
    expect(want.flatMap((p) => p.posts).some((s) => s.startsWith(victim))).toBe(false)
    expect(await allPages(edge.app, FRESH)).toEqual(want)
    expect(await allPages(edge.app, FRESH, { reader: users.alice })).toEqual(await allPages(primary, FRESH, { reader: users.alice }))
  })

  it('leaves out, for anonymous readers only, an author who asks not to be shown to them (consent in `changes`)', async () => {
    const shy = AUTHORS[2]
    write('nu', [{ t: 'consent', did: shy, kind: 'profile', value: true, rev: '' }])
    await redis.xadd(keys().changes, '*', 'k', 'consent', 'did', shy, 'hide', '0', 'nu', '1')
    await pause(600) // the primary's filter looks for consent changes every 500 ms
    const want = await allPages(primary, FRESH)
    expect(want.flatMap((p) => p.posts).some((s) => s.includes(shy))).toBe(false)
    await waitFor(async () => JSON.stringify(await allPages(edge.app, FRESH)) === JSON.stringify(want), 'the edge to leave the author out', 5000)
    // signed-in readers still see them
    const bobs = await allPages(edge.app, FRESH, { reader: users.bob })
    expect(bobs.flatMap((p) => p.posts).some((s) => s.includes(shy))).toBe(true)
    expect(bobs).toEqual(await allPages(primary, FRESH, { reader: users.bob }))
  })

  it('ends paging (an empty page) when the snapshot a cursor names is gone from Redis', async () => {
    // the anonymous list is published again with a short life, and read by an edge that has not cached it yet
    const id = Number(await redis.hget(keys().anon, FRESH))
    await redis.pexpire(keys().snapshot(id), 1500)
    const otherCtx = new AppContext(edgeCtx.config, silentLogger)
    const other = createEdge(otherCtx)
    try {
      await other.start()
      const p1 = await page(other.app, FRESH)
      expect(snapshotOf(p1)).toBe(id)
      await waitFor(async () => (await redis.exists(keys().snapshot(id))) === 0, 'the snapshot to expire', 5000)
      const r = await request(other.app, skeletonUrl(FRESH, 4, p1.cursor))
      expect(r.status).toBe(200)
      expect(r.body.feed).toEqual([])
      expect(r.body.cursor).toBeUndefined()
    } finally {
      await other.close()
      await otherCtx.close()
    }
    await publishAnon(FRESH)
  })

  it('queues sendInteractions for the primary after checking them as the primary does', async () => {
    const body = { feed: FRESH, interactions: [{ item: posts[3].uri, event: 'app.bsky.feed.defs#interactionSeen', feedContext: 'x' }] }
    const ok = await request(edge.app, `/xrpc/${INTERACTIONS}`, { method: 'POST', token: await users.bob.token(SERVICE, INTERACTIONS), body })
    expect(ok).toMatchObject({ status: 200, body: {} })
    const entries = await redis.xrange(keys().writes, '-', '+')
    expect(entries.length).toBe(1)
    const f = Object.fromEntries(entries[0][1].reduce<string[][]>((acc, v, i) => (i % 2 ? acc[acc.length - 1].push(v) : acc.push([v]), acc), []))
    expect(f).toEqual({ kind: 'interactions', did: users.bob.did, body: JSON.stringify(body) })
    // refused alike: no token, a bad body, too large a body
    const bad = { interactions: [{ item: posts[3].uri, event: 7 }] }
    const cases = [
      { body },
      { body: bad, token: true },
      { body: 'not json', token: true },
      {
        body: {
          interactions: Array.from({ length: 3000 }, () => ({ item: posts[3].uri, event: 'app.bsky.feed.defs#interactionSeen', feedContext: 'x'.repeat(60) })),
        },
        token: true,
      },
    ]
    for (const c of cases) {
      const init = async () => ({ method: 'POST', body: c.body, ...(c.token ? { token: await users.bob.token(SERVICE, INTERACTIONS) } : {}) })
      const [a, b] = [await request(primary, `/xrpc/${INTERACTIONS}`, await init()), await request(edge.app, `/xrpc/${INTERACTIONS}`, await init())]
      expect(a.status).toBeGreaterThanOrEqual(400)
      expect({ status: b.status, body: b.body }).toEqual({ status: a.status, body: a.body })
    }
    expect((await redis.xrange(keys().writes, '-', '+')).length).toBe(1)
    // the size of what waits for the primary is counted with it, and bounds it: past the bound, more is refused
    expect(Number(await redis.get(keys().writesSize))).toBe(JSON.stringify(body).length)
    await redis.incrby(keys().writesSize, MAX_WRITES_BACKLOG_CHARS)
    await pause(1100) // the edge trusts what it read of the backlog for a second
    const full = await request(edge.app, `/xrpc/${INTERACTIONS}`, { method: 'POST', token: await users.bob.token(SERVICE, INTERACTIONS), body })
    expect(full.status).toBe(503)
    expect((await redis.xrange(keys().writes, '-', '+')).length).toBe(1)
    await redis.decrby(keys().writesSize, MAX_WRITES_BACKLOG_CHARS)
  })

  it('passes every other request on to the primary, and says so clearly when it cannot', async () => {
    const mixUrl = `/xrpc/${GET_MIX}?feed=${encodeURIComponent(SCIENCE)}`
    const token = await users.alice.token(SERVICE, GET_MIX)
    const [a, b] = [await request(primary, mixUrl, { token }), await request(edge.app, mixUrl, { token })]
    expect(b).toMatchObject({ status: 200, body: a.body })
    const page = await request(edge.app, '/', { headers: { accept: 'text/html' } })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/text\/html/)
    expect(page.body).toEqual((await request(primary, '/', { headers: { accept: 'text/html' } })).body)
    // an unknown method is the primary's answer too
    expect(await request(edge.app, '/xrpc/com.example.nothing')).toMatchObject({ status: 404, body: { error: 'MethodNotImplemented' } })

    // a request that an edge already passed on (SKYSIFT_PRIMARY_URL naming an edge) is not passed on again
    expect(await request(edge.app, mixUrl, { token, headers: { 'x-skysift-proxied': '1' } })).toMatchObject({ status: 508, body: { error: 'ProxyLoop' } })

    // a primary that does not answer, and none at all
    for (const [primaryUrl, status, error] of [
      ['http://127.0.0.1:1', 502, 'PrimaryUnavailable'],
      [undefined, 503, 'PrimaryNotConfigured'],
    ] as const) {
      const other = new AppContext(testConfig({ ...edgeCtx.config, primaryUrl }), silentLogger)
      const e = createEdge(other)
      try {
        const r = await request(e.app, mixUrl, { token })
        expect(r.status).toBe(status)
        expect(r.body.error).toBe(error)
        expect(r.body.message).toMatch(/primary/i)
      } finally {
        await e.close()
        await other.close()
      }
    }
  })

  it('answers clearly, and promptly, when its Redis does not answer', async () => {
    const other = new AppContext(testConfig({ ...edgeCtx.config, redisUrl: 'redis://127.0.0.1:1' }), silentLogger)
    const e = createEdge(other)
    try {
      const t0 = Date.now()
      await e.start()
      const skeleton = await request(e.app, skeletonUrl(FRESH, 4))
      expect(skeleton).toMatchObject({ status: 503, body: { error: 'NotReady' } })
      const health = await request(e.app, '/xrpc/_health')
      expect(health.status).toBe(503)
      expect(health.body).toMatchObject({ ok: false, role: 'edge' })
      const sent = await request(e.app, `/xrpc/${INTERACTIONS}`, {
        method: 'POST',
        token: await users.bob.token(SERVICE, INTERACTIONS),
        body: { interactions: [{ item: posts[3].uri, event: 'app.bsky.feed.defs#interactionSeen' }] },
      })
      expect(sent).toMatchObject({ status: 503, body: { error: 'NotReady' } })
      expect(Date.now() - t0).toBeLessThan(15_000)
    } finally {
      await e.close()
      await other.close()
    }
  }, 30_000)

  it('reports its own health: ok while Redis answers, and whether the primary is publishing', async () => {
    await publishMeta()
    await pause(1100) // read again at most every second
    const r = await request(edge.app, '/xrpc/_health')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ ok: true, role: 'edge', primary: { publishing: true, proxyTo: primaryUrl }, checks: { redis: 'ok' } })
    expect(r.body.cache.snapshots).toBeGreaterThan(0)
    await redis.hset(keys().meta, 'primary', String(Date.now() - 60_000))
    await pause(1100)
    const later = await request(edge.app, '/xrpc/_health')
    expect(later.status).toBe(200)
    expect(later.body).toMatchObject({ ok: true, primary: { publishing: false } })
  })

  it('counts the usage of what it served in Redis, and never opened a SQLite file', async () => {
    await edge.close()
    const usage = await redis.hgetall(keys().usage)
    expect(Object.keys(usage).length).toBeGreaterThan(0)
    for (const n of Object.values(usage)) expect(Number(n)).toBeGreaterThan(0)
    expect(fs.existsSync(path.dirname(edgeDbPath))).toBe(false)
  })

  it('runs as `skysift edge`: a process of its own, with no SQLite file', async () => {
    await publishMeta()
    const noDb = path.join(path.dirname(dbPath), 'edge-process', 'skysift.db')
    const env = {
      ...process.env,
      SKYSIFT_DB_PATH: noDb,
      REDIS_URL,
      SKYSIFT_QUEUE_PREFIX: prefix,
      SKYSIFT_PORT: '0',
      SKYSIFT_HOST: '127.0.0.1',
      SKYSIFT_SERVICE_DID: SERVICE,
      SKYSIFT_PUBLIC_URL: 'https://feeds.test',
      SKYSIFT_PUBLISHER_DID: PUBLISHER,
      SKYSIFT_PRIMARY_URL: primaryUrl,
      SKYSIFT_SERVE_PROCESSES: '1',
      SKYSIFT_LOG_LEVEL: 'info',
    }
    const lines: { msg: string; port?: number }[] = []
    const child: ChildProcess = spawn(process.execPath, [CLI, 'edge'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    collectJsonLines(child, lines)
    try {
      const port = (await waitFor(() => lines.find((l) => l.msg === 'serving'), 'the edge to listen', 60_000))?.port
      const base = `http://127.0.0.1:${port}`
      const health = await (await fetch(`${base}/xrpc/_health`)).json()
      expect(health).toMatchObject({ ok: true, role: 'edge' })
      const got = (await (await fetch(`${base}${skeletonUrl(FRESH, 4)}`)).json()) as Page
      const want = await page(primary, FRESH)
      expect({ feed: got.feed, cursor: got.cursor }).toEqual({ feed: want.feed, cursor: want.cursor })
      const proxied = await fetch(`${base}/xrpc/${GET_MIX}?feed=${encodeURIComponent(SCIENCE)}`, {
        headers: { authorization: `Bearer ${await users.bob.token(SERVICE, GET_MIX)}` },
      })
      expect(proxied.status).toBe(200)
      // it reports itself as every process does, so `skysift status` and /admin list it
      const report = await waitFor(async () => (await readProcessReports(redis, prefix)).find((r) => r.pid === child.pid), 'the edge process report', 10_000)
      expect(report?.roles).toEqual(['edge'])
    } finally {
      child.kill('SIGTERM')
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r))
    }
    expect(child.exitCode).toBe(0)
    expect(fs.existsSync(path.dirname(noDb))).toBe(false)
  }, 90_000)
})

describe('EdgeView: what an edge keeps in memory is bounded (real Redis)', () => {
  it('keeps parsed lists up to an item budget (least recently used go first), and deletions up to a cap (oldest first)', async () => {
    const q = queuePrefix()
    const redis = new Redis(redisOptions(REDIS_URL))
    const stream = new Redis(redisOptions(REDIS_URL))
    const view = new EdgeView({ redis, stream, queuePrefix: q.prefix, log: silentLogger, snapshotTtlMs: 60_000, maxItems: 100, maxChanges: 10 })
    try {
      const k = edgeKeys(q.prefix)
      const items = (n: number, tag: string) => Array.from({ length: n }, (_, i) => [`at://did:plc:${tag}/app.bsky.feed.post/${i}`, `c${i}`])
      for (const id of [1, 2, 3])
        await redis.set(k.snapshot(id), JSON.stringify({ feed: FRESH, key: 'k', builtAt: 0, checkedAt: 0, items: items(40, `s${id}`) }))
      expect((await view.snapshot(1))?.uris.length).toBe(40)
      expect((await view.snapshot(2))?.uris.length).toBe(40)
      await view.snapshot(1) // used again: 2 is now the least recently used
      await view.snapshot(3)
      expect(view.figures()).toMatchObject({ snapshots: 2, items: 80 })
      await redis.del(k.snapshot(2), k.snapshot(1))
      expect(await view.snapshot(1)).not.toBeNull() // still held
      expect(await view.snapshot(2)).toBeNull() // evicted, and gone from Redis

      // deletions: past the cap, those older than any live snapshot go first, then the oldest
      const old = Date.now() - 120_000
      view.apply(Array.from({ length: 6 }, (_, i) => [`${old + i}-0`, ['k', 'del', 'uri', `at://old/${i}`]] as [string, string[]]))
      view.apply(Array.from({ length: 8 }, (_, i) => [`${Date.now() + i}-0`, ['k', 'del', 'uri', `at://new/${i}`]] as [string, string[]]))
      expect(view.deleted.size).toBeLessThanOrEqual(10)
      expect([...view.deleted.keys()].every((u) => u.startsWith('at://new/'))).toBe(true)
      view.apply(Array.from({ length: 5 }, (_, i) => [`${Date.now() + 100 + i}-0`, ['k', 'del', 'uri', `at://newer/${i}`]] as [string, string[]]))
      expect(view.deleted.size).toBeLessThanOrEqual(10)
      expect(view.deleted.has('at://newer/4')).toBe(true)
      expect(view.deleted.has('at://new/0')).toBe(false)
    } finally {
      redis.disconnect()
      stream.disconnect()
      await q.cleanup()
    }
  })
})

describe('edge nodes next to a primary that publishes (SKYSIFT_EDGE_PUBLISH; real SQLite, Redis, did:web identities)', () => {
  let ctx: AppContext
  let primary: Hono
  let edgeCtx: AppContext
  let edge: ReturnType<typeof createEdge>
  let users: Record<string, TestUser>
  let writer: BatchWriter
  let edgeDbPath = ''
  let batch = 0
  const cleanups: (() => unknown)[] = []
  const posts = Array.from({ length: 18 }, (_, i) => postEvent({ author: AUTHORS[i % 3], text: `a post numbered ${i}`, minutesAgo: 60 - i }))
  const write = (events: IngestEvent[]) => writer.write({ id: `p${++batch}`, events, scores: [], eventTime: Date.now() })

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['alice', 'bob'])
    users = ids.users
    cleanups.push(ids.close)
    const common = {
      queuePrefix: q.prefix,
      serviceDid: SERVICE,
      publicUrl: 'https://feeds.test',
      publisherDid: PUBLISHER,
      allowInsecureHttp: true,
      cacheTtlMs: 600_000,
    }
    ctx = new AppContext(testConfig({ ...common, dbPath: path.join(t.dir, 'skysift.db'), edgePublish: true, backfillConcurrency: 0 }), silentLogger)
    writer = new BatchWriter(ctx.db.sqlite)
    write(posts)
    const served = createServeApp(ctx, { edgeTimings: { beatMs: 200, pollMs: 50, blockMs: 200 } })
    primary = served.app
    cleanups.push(() => ctx.close(), served.close)
    const server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: primary.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())))
    edgeDbPath = path.join(t.dir, 'not-here', 'skysift.db')
    const primaryUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    edgeCtx = new AppContext(testConfig({ ...common, dbPath: edgeDbPath, primaryUrl }), silentLogger)
    edge = createEdge(edgeCtx)
    await edge.start()
    cleanups.push(
      () => edgeCtx.close(),
      () => edge.close(),
    )
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const pages = async (app: Hono, feed: string, reader?: TestUser, limit = 4) => {
    const token = reader ? await reader.token(SERVICE, SKELETON) : undefined
    const out: { posts: string[]; cursor?: string }[] = []
    let cursor: string | undefined
    do {
      const res = await app.request(
        `/xrpc/${SKELETON}?${new URLSearchParams({ feed, limit: String(limit), ...(cursor ? { cursor } : {}) })}`,
        token ? { headers: { authorization: `Bearer ${token}` } } : {},
      )
      if (res.status !== 200) return { status: res.status, body: await res.text() }
      const p = (await res.json()) as Page
      out.push({ posts: p.feed.map((i) => `${i.post} ${i.feedContext}`), cursor: p.cursor })
      cursor = p.cursor
    } while (cursor && out.length < 50)
    return out
  }
  /** Waits until the edge serves `reader` (or anonymous readers) the primary's pages and cursors; returns them. */
  const same = async (feed: string, reader?: TestUser, what = 'the same pages on the edge as on the primary') => {
    let last = ''
    await waitFor(
      async () => {
        const [a, b] = [JSON.stringify(await pages(primary, feed, reader)), JSON.stringify(await pages(edge.app, feed, reader))]
        last = `primary ${a}\nedge    ${b}`
        return a === b
      },
      `${what}\n${last}`,
      15_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${last}`)
    })
    return pages(primary, feed, reader) as Promise<{ posts: string[]; cursor?: string }[]>
  }
  const shown = (ps: { posts: string[] }[]) => ps.flatMap((p) => p.posts)

  it('serves anonymous readers the pages and cursors the primary serves, from what it published', async () => {
    const want = await same(FRESH, undefined)
    expect(shown(want).length).toBe(18)
    expect(want.length).toBeGreaterThan(3)
    expect(await same(SCIENCE, undefined)).toBeDefined()
  })

  it('serves a signed-in reader the primary placed (after the edge told it of them) the same pages; cursors page across both', async () => {
    const want = await same(FRESH, users.bob)
    expect(shown(want).length).toBe(18)
    // a cursor from the primary pages on the edge
    const token = await users.bob.token(SERVICE, SKELETON)
    const url = (cursor?: string) => `/xrpc/${SKELETON}?${new URLSearchParams({ feed: FRESH, limit: '4', ...(cursor ? { cursor } : {}) })}`
    const p1 = (await (await primary.request(url(), { headers: { authorization: `Bearer ${token}` } })).json()) as Page
    const onEdge = (await (await edge.app.request(url(p1.cursor), { headers: { authorization: `Bearer ${token}` } })).json()) as Page
    const onPrimary = (await (await primary.request(url(p1.cursor), { headers: { authorization: `Bearer ${token}` } })).json()) as Page
    expect(onEdge.feed).toEqual(onPrimary.feed)
    expect(onEdge.cursor).toBe(onPrimary.cursor)
  })

  it('serves a mix saved through the edge (passed on to the primary) from the next first page on', async () => {
    const before = await same(FRESH, users.bob)
    const saved = await edge.app.request('/xrpc/app.skysift.feed.putMix', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await users.bob.token(SERVICE, 'app.skysift.feed.putMix')}` },
      body: JSON.stringify({ feed: FRESH, agents: [{ agent: 'recency', weight: 50 }] }),
    })
    expect(saved.status).toBe(200)
    // at once: no wait for the edge to read the reader's placement again
    const [a, b] = [await pages(primary, FRESH, users.bob), await pages(edge.app, FRESH, users.bob)]
    expect(b).toEqual(a)
    expect(a).not.toEqual(before)
  })

  it("follows a reader's feedback sent to the edge, and their blocks: the primary places them again", async () => {
    await same(FRESH, users.alice) // placed on the feed
    const gone = posts[15].uri
    const sent = await edge.app.request(`/xrpc/${INTERACTIONS}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await users.alice.token(SERVICE, INTERACTIONS)}` },
      body: JSON.stringify({ feed: FRESH, interactions: [{ item: gone, event: 'app.bsky.feed.defs#requestLess' }] }),
    })
    expect(sent.status).toBe(200)
    // the primary stores it from `writes`, and both serve her overlay
    await waitFor(
      async () => !shown((await pages(primary, FRESH, users.alice)) as { posts: string[] }[]).some((s) => s.startsWith(gone)),
      'the feedback on the primary',
      10_000,
    )
    expect(shown(await same(FRESH, users.alice, 'her overlay on the edge')).some((s) => s.startsWith(gone))).toBe(false)

    write([{ t: 'reader', did: users.alice.did, backfilledAt: Date.now() }])
    write([{ t: 'block', uri: `at://${users.alice.did}/app.bsky.graph.block/3kblockblock33`, author: users.alice.did, subject: AUTHORS[1] }])
    await waitFor(
      async () => !shown((await pages(primary, FRESH, users.alice)) as { posts: string[] }[]).some((s) => s.includes(AUTHORS[1])),
      'the block on the primary',
      10_000,
    )
    const want = await same(FRESH, users.alice, 'her blocks on the edge')
    expect(shown(want).length).toBe(11) // 18, less 6 by the blocked author, less the one waved off
  })

  it('leaves out what the primary publishes as deleted, and authors who ask not to be shown to anonymous readers', async () => {
    const victim = posts[17].uri
    write([{ t: 'delete', uri: victim, collection: 'app.bsky.feed.post' }])
    const onPrimary = async (who: TestUser | undefined, ok: (s: string[]) => boolean, what: string) =>
      waitFor(async () => ok(shown((await pages(primary, FRESH, who)) as { posts: string[] }[])), what, 10_000)
    await onPrimary(undefined, (s) => !s.some((x) => x.startsWith(victim)), 'the deletion on the primary')
    expect(shown(await same(FRESH, undefined, 'the deletion on the edge')).some((s) => s.startsWith(victim))).toBe(false)
    expect(shown(await same(FRESH, users.alice)).some((s) => s.startsWith(victim))).toBe(false)

    write([{ t: 'consent', did: AUTHORS[2], kind: 'profile', value: true, rev: '' }])
    await onPrimary(undefined, (s) => !s.some((x) => x.includes(AUTHORS[2])), 'the consent on the primary')
    expect(shown(await same(FRESH, undefined, 'the consent on the edge')).some((s) => s.includes(AUTHORS[2]))).toBe(false)
    // signed-in readers still see them
    expect(shown(await same(FRESH, users.bob)).some((s) => s.includes(AUTHORS[2]))).toBe(true)
    expect(fs.existsSync(path.dirname(edgeDbPath))).toBe(false)
  })

  it('honours, on an edge started later, a consent flag set longer ago than `changes` keeps entries', async () => {
    // the flag of the test before, its entry trimmed away as it would be after the snapshot TTL
    const r = edgeCtx.redis()
    const k = edgeKeys(edgeCtx.config.queuePrefix)
    await waitFor(async () => (await r.hget(k.consent, AUTHORS[2])) === '01', 'the flag in the consent hash', 10_000)
    await r.xtrim(k.changes, 'MAXLEN', 0)
    const laterCtx = new AppContext(edgeCtx.config, silentLogger)
    const later = createEdge(laterCtx)
    cleanups.push(
      () => laterCtx.close(),
      () => later.close(),
    )
    await later.start()
    const anon = (await pages(later.app, FRESH)) as { posts: string[] }[]
    expect(shown(anon).length).toBeGreaterThan(0)
    expect(shown(anon).some((s) => s.includes(AUTHORS[2]))).toBe(false)
    expect(shown((await pages(later.app, FRESH, users.bob)) as { posts: string[] }[]).some((s) => s.includes(AUTHORS[2]))).toBe(true)
  })
})

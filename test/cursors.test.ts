import path from 'node:path'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent } from './support/builders.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'

const SERVICE = 'did:web:feeds.test'
const SECRET_WORD = 'zeppelinology'

describe('paging cursors and explanations belong to the reader they were made for (real SQLite, Redis, did:web identities)', () => {
  let ctx: AppContext
  let app: Hono
  let users: Record<string, TestUser>
  let dir: string
  let prefix: string
  let FEED: string
  let OTHER_FEED: string
  const cleanups: (() => unknown)[] = []

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    dir = t.dir
    prefix = q.prefix
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['alice', 'bob'])
    users = ids.users
    cleanups.push(ids.close)
    ctx = new AppContext(testConfig({ dbPath: path.join(dir, 'skysift.db'), queuePrefix: prefix, serviceDid: SERVICE, allowInsecureHttp: true }), silentLogger)
    const served = createServeApp(ctx)
    app = served.app
    cleanups.push(() => ctx.close(), served.close)
    FEED = ctx.feeds[0].uri
    OTHER_FEED = ctx.feeds[1].uri
    const posts = Array.from({ length: 30 }, (_, i) =>
      postEvent({ minutesAgo: 60 - i, text: i % 2 ? `about ${SECRET_WORD} number ${i}` : `science post ${i}` }),
    )
    new BatchWriter(ctx.db.sqlite).write({ id: 'seed', events: posts, scores: [], eventTime: Date.now() })
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const call = async (a: Hono, method: 'GET' | 'POST', nsid: string, who: TestUser | null, input: Record<string, unknown>) => {
    const token = who ? await who.token(SERVICE, nsid) : undefined
    const url = method === 'GET' ? `/xrpc/${nsid}?${new URLSearchParams(input as Record<string, string>)}` : `/xrpc/${nsid}`
    const res = await a.request(url, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: method === 'POST' ? JSON.stringify(input) : undefined,
    })
    return { status: res.status, body: (await res.json()) as any }
  }
  const page = (who: TestUser | null, feed: string, cursor?: string, a = app) =>
    call(a, 'GET', 'app.bsky.feed.getFeedSkeleton', who, { feed, limit: '5', ...(cursor ? { cursor } : {}) })

  it("refuses a reader's cursor to anyone else, on another feed, and a made-up one", async () => {
    expect(
      (
        await call(app, 'POST', 'app.skysift.feed.putMix', users.alice, {
          feed: FEED,
          agents: [{ agent: 'keyword', weight: 100, options: { include: [SECRET_WORD] } }],
        })
      ).status,
    ).toBe(200)
    const first = await page(users.alice, FEED)
    expect(first.body.feed[0].post).toBeTruthy()
    const cursor = first.body.cursor as string
    const second = await page(users.alice, FEED, cursor)
    expect(second.status).toBe(200)
    expect(second.body.feed).toHaveLength(5)
    for (const [who, feed] of [
      [users.bob, FEED],
      [null, FEED],
      [users.alice, OTHER_FEED],
    ] as const) {
      const r = await page(who, feed, cursor)
      expect(r.status).toBe(400)
      expect(r.body).toMatchObject({ error: 'InvalidRequest', message: expect.stringMatching(/cursor not valid/) })
    }
    // walking snapshot ids with made-up cursors opens nothing
    const snap = cursor.split('.')[0]
    for (const forged of [`${snap}.5.${'A'.repeat(22)}`, `1.0.${cursor.split('.')[2]}`]) expect((await page(null, FEED, forged)).status).toBe(400)
  })

  it('keeps cursors valid across a restart and in every process using the same SQLite file', async () => {
    const cursor = (await page(users.alice, FEED)).body.cursor as string
    const again = new AppContext(ctx.config, silentLogger)
    const served = createServeApp(again)
    try {
      const r = await page(users.alice, FEED, cursor, served.app)
      expect(r.status).toBe(200)
      expect(r.body.feed).toHaveLength(5)
      expect((await page(users.bob, FEED, cursor, served.app)).status).toBe(400)
    } finally {
      await served.close()
      await again.close()
    }
  })

  it("explains a private mix's item to its reader only, and a default mix's item to anyone", async () => {
    const mine = (await page(users.alice, FEED)).body.feed[0].feedContext as string
    const explain = (who: TestUser | null, feedContext: string) => call(app, 'GET', 'app.skysift.feed.explainItem', who, { feedContext })
    const own = await explain(users.alice, mine)
    expect(own.status).toBe(200)
    expect(JSON.stringify(own.body)).toContain(SECRET_WORD)
    for (const who of [null, users.bob]) {
      const r = await explain(who, mine)
      expect(r.status).toBe(400)
      expect(r.body.error).toBe('UnknownContext')
      expect(JSON.stringify(r.body)).not.toContain(SECRET_WORD)
    }
    const html = await (await app.request(`/why?ctx=${encodeURIComponent(mine)}`)).text()
    expect(html).not.toContain(SECRET_WORD)
    // a mix no one saved (a preview's) is explained by its agents' names, without options
    const preview = await call(app, 'POST', 'app.skysift.feed.previewMix', users.bob, {
      feed: FEED,
      agents: [{ agent: 'keyword', weight: 100, options: { include: ['science'] } }],
      limit: 1,
    })
    const unsaved = await explain(null, preview.body.feed[0].feedContext)
    expect(unsaved.status).toBe(200)
    expect(unsaved.body.reasons[0]).toMatchObject({ agent: 'keyword', title: 'Keywords' })
    expect(JSON.stringify(unsaved.body)).not.toContain('“science”')
    const anon = (await page(null, FEED)).body.feed[0].feedContext as string
    expect((await explain(null, anon)).status).toBe(200)
    expect((await explain(users.bob, anon)).status).toBe(200)
  })
})

/**
 * Error texts a client sees say what is wrong and what is allowed, never a
 * library's internals: a limit out of range names the range, and a bearer
 * token that is not a JWT gets a clear authentication error.
 */
import path from 'node:path'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'

describe('error texts', () => {
  let app: Hono
  const cleanups: (() => unknown)[] = []
  const FEED = 'at://did:web:feeds.test/app.bsky.feed.generator/fresh'

  beforeAll(() => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ctx = new AppContext(
      testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, publicUrl: 'https://feeds.test', serviceDid: 'did:web:feeds.test' }),
      silentLogger,
    )
    const served = createServeApp(ctx)
    app = served.app
    cleanups.push(
      () => ctx.close(),
      () => served.close(),
    )
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('a limit out of range names the range', async () => {
    for (const limit of ['100000', '0', '101', 'abc', '-5', '2.5']) {
      const res = await app.request(`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FEED)}&limit=${limit}`)
      expect(res.status, limit).toBe(400)
      expect(await res.json(), limit).toEqual({ error: 'InvalidRequest', message: 'Error: limit must be an integer from 1 to 100' })
    }
    expect((await app.request(`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(FEED)}&limit=100`)).status).toBe(200)
  })

  it('a bearer token that is not a JWT gets a clear authentication error, not a parser message', async () => {
    for (const token of ['invalid', 'eyJhbGciOiJFUzI1NksifQ.bm90IGpzb24.c2ln', 'a.b.c']) {
      const res = await app.request('/xrpc/app.skysift.feed.putMix', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ feed: FEED, agents: [{ agent: 'recency', weight: 10 }] }),
      })
      expect(res.status, token).toBe(401)
      const body = (await res.json()) as { error: string; message: string }
      expect(body.error, token).toMatch(/^BadJwt/)
      expect(body.message, token).not.toMatch(/JSON|Unexpected token|position/)
    }
    const res = await app.request('/xrpc/app.skysift.feed.getMix?feed=x', { headers: { authorization: 'Bearer eyJhbGciOiJFUzI1NksifQ.bm90IGpzb24.c2ln' } })
    expect(await res.json()).toEqual({ error: 'BadJwt', message: 'the bearer token is not a well-formed service-auth JWT' })
  })
})

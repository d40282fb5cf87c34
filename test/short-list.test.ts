/**
 * A feed asked for before any post arrived (the demo's README curl, say)
 * must not keep serving its empty list once posts are stored: a short list
 * is rebuilt as soon as posts came after it was built.
 */
import path from 'node:path'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { SHORT_LIST_REBUILD_MS } from '../src/feed/skeleton.ts'
import { createServeApp } from '../src/runtime.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent } from './support/builders.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'

describe('a short list and new posts', () => {
  let ctx: AppContext
  let app: Hono
  const cleanups: (() => unknown)[] = []

  beforeAll(() => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    // a long TTL: only the new posts may make the list be rebuilt
    ctx = new AppContext(
      testConfig({
        dbPath: path.join(t.dir, 'skysift.db'),
        queuePrefix: q.prefix,
        cacheTtlMs: 3_600_000,
        publicUrl: 'https://feeds.test',
        serviceDid: 'did:web:feeds.test',
      }),
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

  const skeleton = async (rkey: string) => {
    const res = await app.request(
      `/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(`at://did:web:feeds.test/app.bsky.feed.generator/${rkey}`)}&limit=10`,
    )
    expect(res.status).toBe(200)
    return ((await res.json()) as { feed: { post: string }[] }).feed.map((i) => i.post)
  }

  it('serves the posts that arrived after an empty list was built, without waiting for the cache TTL', async () => {
    expect(await skeleton('fresh')).toEqual([])
    const writer = new BatchWriter(ctx.db.sqlite)
    const posts = Array.from({ length: 30 }, (_, i) => postEvent({ minutesAgo: i + 1, text: `post number ${i}` }))
    writer.write({ id: 'b1', events: posts, scores: [], eventTime: Date.now() })
    await new Promise((r) => setTimeout(r, SHORT_LIST_REBUILD_MS + 100))
    const served = await skeleton('fresh')
    expect(served).toHaveLength(10)
    expect(new Set(served).size).toBe(10)
    for (const uri of served) expect(posts.map((p) => p.uri)).toContain(uri)
  })

  it('keeps serving a short list while no post arrives', async () => {
    const before = await skeleton('fresh')
    await new Promise((r) => setTimeout(r, SHORT_LIST_REBUILD_MS + 100))
    const builds = ctx.db.sqlite.prepare('SELECT count(*) FROM feed_snapshots').pluck().get()
    expect(await skeleton('fresh')).toEqual(before)
    expect(ctx.db.sqlite.prepare('SELECT count(*) FROM feed_snapshots').pluck().get()).toBe(builds)
  })
})

import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import type { PostEvent } from '../src/contracts/events.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { tempDir, waitFor } from './support/resources.ts'
import { postEvent } from './support/builders.ts'

const author = 'did:plc:davedavedavedavedavedave'
const post = (minutesAgo: number): PostEvent => postEvent({ author, minutesAgo })

describe('serving with Redis down', () => {
  let ctx: AppContext
  let served: ReturnType<typeof createServeApp>
  let cleanup: () => void

  beforeAll(() => {
    const t = tempDir()
    cleanup = t.cleanup
    // nothing listens on port 1: every Redis call fails
    ctx = new AppContext(readConfig({}, { dbPath: path.join(t.dir, 'skysift.db'), redisUrl: 'redis://127.0.0.1:1', cacheTtlMs: 200 }), silentLogger)
    served = createServeApp(ctx)
    new BatchWriter(ctx.db.sqlite).write({ id: 'a', events: [post(10), post(5)], scores: [], eventTime: Date.now() })
  })
  afterAll(async () => {
    await served.close().catch(() => {})
    await ctx.close()
    cleanup()
  })

  const feed = () => ctx.feeds[0].uri
  const skeleton = async () => {
    const res = await served.app.request(`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(feed())}`)
    expect(res.status).toBe(200)
    return ((await res.json()) as { feed: { post: string }[] }).feed.map((i) => i.post)
  }

  it('keeps answering from SQLite and refreshes lists in-process', async () => {
    expect(await skeleton()).toHaveLength(2)
    const late = post(0)
    new BatchWriter(ctx.db.sqlite).write({ id: 'b', events: [late], scores: [], eventTime: Date.now() })
    await new Promise((r) => setTimeout(r, 250)) // the list is now stale
    expect(await skeleton()).toHaveLength(2) // served at once from the stale list…
    await waitFor(async () => (await skeleton())[0] === late.uri, 'the inline refresh', 15_000, 200) // …and refreshed without Redis
  })

  it('reports Redis as failing in health, with a 503', async () => {
    const res = await served.app.request('/xrpc/_health')
    expect(res.status).toBe(503)
    const body = (await res.json()) as { ok: boolean; checks: Record<string, string> }
    expect(body.ok).toBe(false)
    expect(body.checks.sqlite).toBe('ok')
    expect(body.checks.redis).not.toBe('ok')
  })
})

import fs from 'node:fs'
import path from 'node:path'
import { lexicons } from '@atproto/api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { syntheticJsonl } from '../src/ingest/synthetic.ts'
import { silentLogger } from '../src/logger.ts'
import { Redis } from 'ioredis'
import { deleteQueueKeys, redisOptions } from '../src/contracts/queues.ts'
import { createServeApp, startIngest, startScore, startStore, type Running } from '../src/runtime.ts'
import { readProcessReports, startProcessReport } from '../src/status/report.ts'
import { REDIS_URL, tempDir, testConfig, waitFor } from './support/resources.ts'

const EVENTS = 20_000

/**
 * A Redis database of its own (no other test uses it), so that every key the chain leaves can be checked to lie
 * under its prefix; the prefix carries a hash tag, as a Redis Cluster deployment's must.
 */
const ISOLATED_DB = 13
const redisUrl = (() => {
  const u = new URL(REDIS_URL)
  u.pathname = `/${ISOLATED_DB}`
  return u.toString()
})()
const PREFIX = `{pipeline-${process.pid}}`

/**
 * An independent model of what the store must hold after reading `lines` in
 * order: live posts (deletes honoured, and posts of accounts whose last
 * status is inactive left out) and like counts.
 */
function model(lines: string[]) {
  const posts = new Map<string, { author: string; likes: number }>()
  const likes = new Map<string, string>()
  const tombstones = new Set<string>()
  const inactive = new Set<string>()
  for (const line of lines) {
    const e = JSON.parse(line)
    if (e.kind === 'account') {
      if (e.account.active) inactive.delete(e.did)
      else inactive.add(e.did)
      continue
    }
    if (e.kind !== 'commit') continue
    const { collection, operation, rkey, record } = e.commit
    const uri = `at://${e.did}/${collection}/${rkey}`
    if (operation === 'delete') {
      tombstones.add(uri)
      if (collection === 'app.bsky.feed.post') posts.delete(uri)
      if (collection === 'app.bsky.feed.like' && likes.has(uri)) {
        const p = posts.get(likes.get(uri)!)
        if (p) p.likes = Math.max(0, p.likes - 1)
        likes.delete(uri)
      }
      continue
    }
    if (collection === 'app.bsky.feed.post') {
      if (!tombstones.has(uri)) posts.set(uri, posts.get(uri) ?? { author: e.did, likes: 0 })
    } else if (collection === 'app.bsky.feed.like') {
      const p = posts.get(record.subject.uri)
      if (p && !tombstones.has(uri) && !likes.has(uri)) {
        likes.set(uri, record.subject.uri)
        p.likes++
      }
    }
  }
  for (const [u, p] of posts) if (inactive.has(p.author)) posts.delete(u)
  return posts
}

describe('the whole chain on a replay: ingest → events queue → score → store queue → SQLite → feed', () => {
  let ctx: AppContext
  let file: string
  const cleanups: (() => unknown)[] = []
  const parts: Running[] = []

  beforeAll(() => {
    const t = tempDir()
    cleanups.push(t.cleanup, () => deleteQueueKeys(redisUrl, PREFIX))
    file = path.join(t.dir, 'events.jsonl')
    fs.writeFileSync(file, syntheticJsonl({ count: EVENTS, seed: 42 }))
    ctx = new AppContext(
      testConfig({
        dbPath: path.join(t.dir, 'skysift.db'),
        redisUrl,
        queuePrefix: PREFIX,
        source: { kind: 'replay', path: file, pace: 'full' },
        batchSize: 250,
      }),
      silentLogger,
    )
  })
  afterAll(async () => {
    for (const p of parts.reverse()) await p.stop()
    await ctx.close()
    for (const c of cleanups.reverse()) await c()
  })

  const stored = () => ctx.db.sqlite.prepare("SELECT value FROM counters WHERE name = 'events_stored'").pluck().get() as number | undefined

  it('stops and restarts mid-replay without losing or duplicating anything', async () => {
    // one score worker with concurrency 1 keeps batches in source order, so the model is exact
    parts.push(startStore(ctx), startScore(ctx, 1))
    const first = startIngest(ctx)
    await waitFor(() => first.ingester.stats.received > EVENTS / 3, 'first third read')
    await first.stop()
    const cursor = Number(ctx.db.sqlite.prepare('SELECT cursor FROM cursors').pluck().get())
    expect(cursor).toBeGreaterThan(0)
    expect(cursor).toBeLessThan(EVENTS)
    const firstQueued = first.ingester.stats.queued

    const second = startIngest(ctx)
    parts.push(second)
    await second.done
    expect(first.ingester.stats.received + second.ingester.stats.received).toBeGreaterThanOrEqual(EVENTS)
    const queued = firstQueued + second.ingester.stats.queued
    await waitFor(() => stored() === queued, `all ${queued} queued events stored`, 60_000)

    const want = model(fs.readFileSync(file, 'utf8').trim().split('\n'))
    const rows = ctx.db.sqlite.prepare('SELECT uri, like_count AS likes FROM posts').all() as { uri: string; likes: number }[]
    expect(rows.length).toBe(want.size)
    expect(new Set(rows.map((r) => r.uri))).toEqual(new Set(want.keys()))
    for (const r of rows) expect(r.likes, r.uri).toBe(want.get(r.uri)!.likes)
    expect(want.size).toBeGreaterThan(500)
  })

  it('pre-scores static agents of the default mixes in the score workers', () => {
    const n = ctx.db.sqlite
      .prepare("SELECT count(DISTINCT instance) FROM agent_scores WHERE instance LIKE 'keyword:%' OR instance LIKE 'language:%'")
      .pluck()
      .get() as number
    expect(n).toBeGreaterThanOrEqual(2)
    const posts = ctx.db.sqlite.prepare('SELECT count(*) FROM posts').pluck().get() as number
    // posts withheld with their (inactive) accounts keep their scores for when they come back
    const withheld = ctx.db.sqlite.prepare('SELECT count(*) FROM withheld_posts').pluck().get() as number
    const langScores = ctx.db.sqlite.prepare("SELECT count(*) FROM agent_scores WHERE instance LIKE 'language:%'").pluck().get() as number
    expect(langScores).toBe(posts + withheld)
  })

  it('serves ranked, lexicon-valid pages made only of live posts', async () => {
    const { app, close } = createServeApp(ctx)
    cleanups.push(close)
    const live = new Set(ctx.db.sqlite.prepare('SELECT uri FROM posts').pluck().all() as string[])
    for (const f of ctx.feeds) {
      const res = await app.request(`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(f.uri)}&limit=100`)
      const body = (await res.json()) as { feed: { post: string }[] }
      expect(res.status).toBe(200)
      lexicons.assertValidXrpcOutput('app.bsky.feed.getFeedSkeleton', body)
      expect(body.feed.length).toBeGreaterThan(0)
      for (const item of body.feed) expect(live.has(item.post), item.post).toBe(true)
    }
  })

  it('keeps every Redis key under its hash-tagged prefix (one Redis Cluster slot), process reports included', async () => {
    const report = startProcessReport(ctx, ['ingest', 'score', 'store'], () => undefined, 200)
    const redis = new Redis({ ...redisOptions(redisUrl), maxRetriesPerRequest: 1 })
    cleanups.push(
      () => redis.disconnect(),
      () => report.stop(),
    )
    const mine = await waitFor(async () => (await readProcessReports(redis, PREFIX)).find((r) => r.pid === process.pid), 'this process to report')
    expect(mine?.roles).toEqual(['ingest', 'score', 'store'])
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await redis.scan(cursor, 'COUNT', 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== '0')
    // queues, the ingest's epoch, agent instances, process reports: a key outside the prefix would land in another slot
    expect(keys.length).toBeGreaterThan(10)
    expect(keys.filter((k) => !k.startsWith(`${PREFIX}:`))).toEqual([])
    expect(keys).toContain(`${PREFIX}:ops:procs`)
  })
})

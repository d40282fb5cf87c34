import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Hono } from 'hono'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { eventRev } from '../src/util/at-ids.ts'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import { createLogger, silentLogger } from '../src/logger.ts'
import { chartSvg } from '../src/serve/admin/admin-page.ts'
import { countEventKinds } from '../src/store/event-kinds.ts'
import type { ProcessReport } from '../src/status/report.ts'
import { nextRows, Retention, retentionPolicy } from '../src/store/retention.ts'
import { ratesOver, series, type Sample } from '../src/status/sampler.ts'
import { formatStatus, mergeAgents } from '../src/status/status.ts'
import { createServeApp } from '../src/runtime.ts'
import { ADMIN_COOKIE, signAdminSession, verifyAdminSession } from '../src/serve/admin/auth.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { engagementKey } from '../src/store/engagement-key.ts'
import { LikeGraph } from '../src/store/like-graph.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'
import { tid } from './support/builders.ts'

const HOUR = 3_600_000
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TOKEN = 'test-admin-token-0123456789'
const METRICS_TOKEN = 'test-metrics-token-0123456789'
const AUTHOR = 'did:plc:opsopsopsopsopsopsopsopsop'

let seq = 0
const postEvent = (ageMs: number, p: Partial<PostEvent> = {}): PostEvent => ({
  t: 'post',
  uri: `at://${AUTHOR}/app.bsky.feed.post/3kops${String(++seq).padStart(8, 'a')}`,
  cid: 'bafyreiaaaaaaaaaaaaaaaaaaaa',
  author: AUTHOR,
  createdAt: Date.now() - ageMs,
  text: 'a post about science and space',
  langs: ['en'],
  replyRoot: null,
  replyParent: null,
  embed: null,
  quote: null,
  tags: [],
  labels: [],
  ...p,
})

describe('retention: bounded SQLite', () => {
  let db: Db
  let cleanup: () => void
  const count = (sql: string, ...args: unknown[]) =>
    Number(
      db.sqlite
        .prepare(sql)
        .pluck()
        .get(...args),
    )

  beforeAll(() => {
    const t = tempDir()
    cleanup = t.cleanup
    db = openDb(path.join(t.dir, 'retention.db'))
  })
  afterAll(() => {
    db.close()
    cleanup()
  })

  it('derives the post horizon from the longest feed window plus the margin', () => {
    const p = retentionPolicy([{ windowHours: 24 }, { windowHours: 48 }], { marginMs: 6 * HOUR, snapshotTtlMs: HOUR })
    expect(p.postsMs).toBe(54 * HOUR)
    expect(p.overlaysMs).toBe(HOUR)
    expect(p.idleListsMs).toBeGreaterThanOrEqual(24 * HOUR)
  })

  it('prunes old posts with their scores, items and engagements, old tombstones, rejects, feedback and idle lists, and nothing else', async () => {
    const now = Date.now()
    const policy = retentionPolicy([{ windowHours: 24 }], { marginMs: 6 * HOUR, snapshotTtlMs: HOUR })
    const writer = new BatchWriter(db.sqlite)
    const oldPosts = Array.from({ length: 1234 }, () => postEvent(31 * HOUR))
    const newPosts = Array.from({ length: 300 }, () => postEvent(2 * HOUR))
    const edge = postEvent(29 * HOUR) // inside window + margin: kept
    const all = [...oldPosts, ...newPosts, edge]
    const likes: IngestEvent[] = all.map((p, i) => ({ t: 'like', uri: `at://did:plc:liker/app.bsky.feed.like/l${i}`, author: 'did:plc:liker', subject: p.uri }))
    writer.write({ id: 'seed', events: [...all, ...likes], scores: all.map((p) => [p.uri, 'keyword:abc', 1]), eventTime: now })
    const sql = db.sqlite
    // an orphan engagement and an orphan score (their post was deleted outside the writer's view)
    sql
      .prepare("INSERT INTO engagements (key, kind, subject) VALUES (?, 'like', 'at://gone/app.bsky.feed.post/1')")
      .run(engagementKey('at://x/app.bsky.feed.like/orphan'))
    sql.prepare("INSERT INTO agent_scores (instance, post_uri, score) VALUES ('keyword:abc', 'at://gone/app.bsky.feed.post/1', 0.5)").run()
    // likes waiting for their post: one minted 10 minutes before the newest event (may still come), one 2 hours before (never will)
    const waitFor = (rkey: string, subject: string, eventTime: number) =>
      writer.write({ id: rkey, events: [{ t: 'like', uri: `at://x/app.bsky.feed.like/${rkey}`, author: 'did:plc:x', subject }], scores: [], eventTime })
    waitFor('waits', `at://did:plc:late/app.bsky.feed.post/${tid(now - 10 * 60_000)}`, now)
    waitFor('stale', `at://did:plc:late/app.bsky.feed.post/${tid(now - 2 * HOUR)}`, now - 2 * HOUR)
    expect(count('SELECT count(*) FROM waiting_engagements')).toBe(2)
    // tombstones: old ones first (rowids grow with time), then recent ones
    const tomb = sql.prepare('INSERT INTO tombstones (uri, at) VALUES (?, ?)')
    for (let i = 0; i < 700; i++) tomb.run(`at://d/app.bsky.feed.like/old${i}`, now - 40 * HOUR)
    for (let i = 0; i < 50; i++) tomb.run(`at://d/app.bsky.feed.like/new${i}`, now - HOUR)
    const rej = sql.prepare("INSERT INTO rejected_events (source, reason, payload, at) VALUES ('s', 'bad', '{}', ?)")
    for (let i = 0; i < 30; i++) rej.run(now - 8 * 24 * HOUR)
    rej.run(now - HOUR)
    const inter = sql.prepare("INSERT INTO interactions (subscriber, feed, post_uri, event, at) VALUES ('did:plc:r', 'f', 'p', 'more', ?)")
    for (let i = 0; i < 10; i++) inter.run(now - 31 * 24 * HOUR)
    inter.run(now - HOUR)
    // lists: a fresh shared list, a superseded overlay, an old overlay that is the newest of its key, a list idle for two days
    const snap = sql.prepare('INSERT INTO feed_snapshots (feed, fingerprint, built_at, size, build_ms, items) VALUES (?, ?, ?, 2, 1, ?)')
    const mk = (fp: string, age: number, uris = [newPosts[0].uri, newPosts[1].uri]) =>
      Number(snap.run('at://f', fp, now - age, JSON.stringify(uris.map((u) => [u, 1, 'c']))).lastInsertRowid)
    const fresh = mk('mixA', 60_000)
    const overlayOld = mk('mixA.r~abc~1~sig', 2 * HOUR)
    const overlayNew = mk('mixA.r~abc~2~sig', 60_000)
    const idle = mk('mixB', 49 * HOUR)
    const oldItemSnap = mk('mixC', 30 * 60_000, [newPosts[0].uri, newPosts[1].uri, oldPosts[0].uri])

    const oldIds = oldPosts.map((p) => sql.prepare('SELECT id FROM posts WHERE uri = ?').pluck().get(p.uri) as number)
    const loggedBefore = count('SELECT coalesce(max(seq), 0) FROM post_changes')
    const retention = new Retention(sql, silentLogger, policy, { batchSize: 100, pauseMs: 0 })
    const r = await retention.run(now)
    expect(r.partial).toBe(false)
    expect(r.posts).toBe(oldPosts.length)
    expect(count('SELECT count(*) FROM posts')).toBe(newPosts.length + 1)
    expect(count('SELECT count(*) FROM posts WHERE uri = ?', edge.uri)).toBe(1)
    expect(count('SELECT count(*) FROM agent_scores')).toBe(newPosts.length + 1)
    expect(count('SELECT count(*) FROM engagements')).toBe(newPosts.length + 1 + 1)
    expect(count('SELECT count(*) FROM engagements WHERE key = ?', engagementKey('at://x/app.bsky.feed.like/waits'))).toBe(1)
    expect(count('SELECT count(*) FROM waiting_engagements')).toBe(1)
    // the expired posts' likes, the orphan, and the like that waited too long; its waiting row
    expect(r.orphanEngagements).toBe(oldPosts.length + 2)
    // the like graph lives as long as the engagements: the kept posts' likes and the one still waiting
    expect(new LikeGraph(sql).size()).toBe(newPosts.length + 1 + 1)
    expect(r.engagements).toBe(1)
    expect(r.orphanScores).toBe(1)
    expect(count('SELECT sum(like_count) FROM posts')).toBe(newPosts.length + 1)
    expect(r.tombstones).toBe(700)
    expect(count('SELECT count(*) FROM tombstones')).toBe(50)
    expect(count('SELECT count(*) FROM rejected_events')).toBe(1)
    expect(count('SELECT count(*) FROM interactions')).toBe(1)
    const snaps = sql.prepare('SELECT id FROM feed_snapshots ORDER BY id').pluck().all() as number[]
    expect(snaps).toEqual([fresh, overlayNew, oldItemSnap])
    expect(snaps).not.toContain(overlayOld)
    expect(snaps).not.toContain(idle)
    // ranking lists learn the expired posts are gone; an expiry is not a deletion (the posts still exist on the network)
    expect(sql.prepare('SELECT post_id FROM post_changes WHERE seq > ? ORDER BY post_id').pluck().all(loggedBefore)).toEqual([...oldIds].sort((a, b) => a - b))
    expect(count('SELECT count(*) FROM post_deletions')).toBe(0)
    expect(count("SELECT value FROM counters WHERE name = 'retention_posts'")).toBe(oldPosts.length)
    expect(count("SELECT value FROM counters WHERE name = 'retention_last_run'")).toBe(now)
    // a second pass finds nothing more
    const again = await retention.run(now)
    expect(again.posts + again.tombstones + again.snapshots + again.engagements + again.orphanEngagements + again.orphanScores).toBe(0)
  })

  it('stops at its budget and finishes on later passes, in small transactions', async () => {
    const now = Date.now()
    const writer = new BatchWriter(db.sqlite)
    writer.write({ id: 'more', events: Array.from({ length: 3000 }, () => postEvent(100 * HOUR)), scores: [], eventTime: now })
    const retention = new Retention(db.sqlite, silentLogger, retentionPolicy([{ windowHours: 24 }], { snapshotTtlMs: HOUR }), {
      batchSize: 50,
      budgetMs: 0.0001,
      pauseMs: 0,
    })
    const first = await retention.run(now)
    expect(first.partial).toBe(true)
    // one transaction: a step not timed yet is given a quarter of its batch
    expect(first.transactions).toBe(1)
    expect(first.posts).toBe(12)
    let left = count('SELECT count(*) FROM posts WHERE created_at < ?', now - 30 * HOUR)
    expect(left).toBe(3000 - 12)
    for (let i = 0; i < 200 && left > 0; i++) {
      await retention.run(now)
      left = count('SELECT count(*) FROM posts WHERE created_at < ?', now - 30 * HOUR)
    }
    expect(left).toBe(0)
  })

  it('sizes its transactions to the time they take, step by step', async () => {
    const now = Date.now()
    const writer = new BatchWriter(db.sqlite)
    const policy = retentionPolicy([{ windowHours: 24 }], { snapshotTtlMs: HOUR })
    const pass = async (txTargetMs: number) => {
      writer.write({ id: `old-${txTargetMs}`, events: Array.from({ length: 1500 }, () => postEvent(100 * HOUR)), scores: [], eventTime: now })
      const r = await new Retention(db.sqlite, silentLogger, policy, { batchSize: 500, pauseMs: 0, txTargetMs }).run(now)
      expect(r.posts).toBe(1500)
      expect(r.partial).toBe(false)
      return r
    }
    // every transaction far under its target: 125, 250, then 500 rows each
    const roomy = await pass(1e6)
    // every transaction over it: the posts' transactions shrink to the smallest size (after the first of 125)
    const tight = await pass(1e-6)
    expect(tight.transactions - roomy.transactions).toBeGreaterThanOrEqual((1500 - 125) / 10 - 6)
    expect(roomy.maxTxMs).toBeGreaterThan(0)
  })

  it('gives a step fewer rows after a transaction over its target, more after one well under it', () => {
    expect(nextRows(500, 10, 2, 2000)).toBe(100)
    expect(nextRows(500, 2.5, 2, 2000)).toBe(500)
    expect(nextRows(100, 0.5, 2, 2000)).toBe(200)
    expect(nextRows(1500, 0.1, 2, 2000)).toBe(2000)
    expect(nextRows(20, 1000, 2, 2000)).toBe(10)
    expect(nextRows(5, 1000, 2, 5)).toBe(5)
  })

  it('truncates a WAL that grew past the limit', async () => {
    const file = db.sqlite.name
    const big = 'x'.repeat(2000)
    const ins = db.sqlite.prepare('INSERT INTO rejected_events (source, reason, payload, at) VALUES (?, ?, ?, ?)')
    db.sqlite.pragma('wal_autocheckpoint = 0')
    db.sqlite.transaction(() => {
      for (let i = 0; i < 2000; i++) ins.run('s', 'r', big, Date.now())
    })()
    expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(1 << 20)
    const r = await new Retention(db.sqlite, silentLogger, retentionPolicy([{ windowHours: 24 }], { snapshotTtlMs: HOUR }), {
      walTruncateBytes: 1 << 20,
      pauseMs: 0,
    }).run()
    expect(r.wal?.truncated).toBe(true)
    expect(fs.statSync(`${file}-wal`).size).toBe(0)
    db.sqlite.pragma('wal_autocheckpoint = 1000')
  })
})

describe('retention of accounts that are not active', () => {
  it('keeps a withheld post with its likes and scores inside the window, prunes it past it, and forgets old statuses of active accounts', async () => {
    const t = tempDir()
    const db = openDb(path.join(t.dir, 'withheld.db'))
    try {
      const count = (sql: string, ...args: unknown[]) =>
        Number(
          db.sqlite
            .prepare(sql)
            .pluck()
            .get(...args),
        )
      const now = Date.now()
      const writer = new BatchWriter(db.sqlite)
      const old = postEvent(31 * HOUR)
      const recent = postEvent(2 * HOUR)
      const likes: IngestEvent[] = [old, recent].map((p, i) => ({
        t: 'like',
        uri: `at://did:plc:liker/app.bsky.feed.like/w${i}`,
        author: 'did:plc:liker',
        subject: p.uri,
      }))
      writer.write({ id: 'w1', events: [old, recent, ...likes], scores: [old, recent].map((p) => [p.uri, 'keyword:abc', 1]), eventTime: now })
      const status = (did: string, active: boolean, ageMs: number): IngestEvent => ({
        t: 'account',
        did,
        active,
        status: active ? null : 'deactivated',
        rev: eventRev((now - ageMs) * 1000),
      })
      writer.write({
        id: 'w2',
        events: [
          status(AUTHOR, false, 0),
          status('did:plc:oldactive', true, 40 * HOUR),
          status('did:plc:newactive', true, HOUR),
          status('did:plc:oldinactive', false, 40 * HOUR),
        ],
        scores: [],
        eventTime: now,
      })
      expect(count('SELECT count(*) FROM withheld_posts')).toBe(2)
      const r = await new Retention(db.sqlite, silentLogger, retentionPolicy([{ windowHours: 24 }], { marginMs: 6 * HOUR, snapshotTtlMs: HOUR }), {
        pauseMs: 0,
      }).run(now)
      expect(r.withheld).toBe(1)
      expect(db.sqlite.prepare('SELECT uri FROM withheld_posts').pluck().all()).toEqual([recent.uri])
      // the recent one keeps its score and its like (counted when it comes back); the expired one's go with the sweeps
      expect(db.sqlite.prepare('SELECT post_uri FROM agent_scores').pluck().all()).toEqual([recent.uri])
      expect(db.sqlite.prepare('SELECT subject FROM engagements').pluck().all()).toEqual([recent.uri])
      expect(r.accounts).toBe(1)
      expect(db.sqlite.prepare('SELECT did FROM account_status ORDER BY did').pluck().all()).toEqual(
        [AUTHOR, 'did:plc:newactive', 'did:plc:oldinactive'].sort(),
      )
      writer.write({ id: 'w3', events: [status(AUTHOR, true, -1000)], scores: [], eventTime: now })
      expect(db.sqlite.prepare('SELECT uri, like_count FROM posts').raw().all()).toEqual([[recent.uri, 1]])
    } finally {
      db.close()
      t.cleanup()
    }
  })
})

describe('status building blocks', () => {
  const sample = (t: number, stored: number, kinds: Record<string, number>, lagS: number | null = 1): Sample => ({ t, stored, kinds, lagS })

  it('computes rates over a window from cumulative samples', () => {
    const now = 1_000_000_000
    const s = [
      sample(now - 120_000, 0, { post: 0 }),
      sample(now - 60_000, 600, { post: 60 }),
      sample(now - 30_000, 900, { post: 90 }),
      sample(now, 1200, { post: 120, like: 30 }),
    ]
    const minute = ratesOver(s, 60_000, now)!
    expect(minute.seconds).toBe(60)
    expect(minute.total).toBeCloseTo(10)
    expect(minute.kinds.post).toBeCloseTo(1)
    expect(minute.kinds.like).toBeCloseTo(0.5)
    expect(ratesOver(s, 3_600_000, now)!.total).toBeCloseTo(10)
    expect(ratesOver([s[3]], 60_000, now)).toBeNull()
    expect(series(s).map((p) => p.eps)).toEqual([10, 10, 10])
  })

  it('draws the chart as inline SVG with both series', () => {
    const now = Date.now()
    const s = Array.from({ length: 30 }, (_, i) => sample(now - (30 - i) * 10_000, i * i * 100, {}, 30 - i))
    const svg = chartSvg(s)
    expect(svg).toMatch(/^<svg /)
    expect(svg.match(/<polyline/g)?.length).toBe(2)
    expect(svg).not.toContain('NaN')
    expect(chartSvg([])).not.toContain('<polyline')
  })

  it('merges agent figures from every process; an agent disabled in one process shows as disabled', () => {
    const rep = (id: string, roles: string[], agents: ProcessReport['agents']): ProcessReport => ({
      id,
      host: 'h',
      pid: 1,
      roles,
      version: '0',
      startedAt: 0,
      at: 0,
      rssBytes: 0,
      agents,
    })
    const a = (over: Partial<ProcessReport['agents'][number]>) => ({
      id: 'keyword',
      kind: 'builtin',
      calls: 10,
      posts: 100,
      strikes: 0,
      lastError: null,
      disabled: null,
      recentMs: [1, 2, 3],
      ...over,
    })
    const views = mergeAgents(null, [
      rep('h:1', ['score'], [a({})]),
      rep('h:2', ['score'], [a({ calls: 5, strikes: 5, recentMs: [100], disabled: '5 strikes in 10 min', lastError: 'failed: boom' })]),
    ])
    const kw = views.find((v) => v.id === 'keyword')!
    expect(kw.calls).toBe(15)
    expect(kw.strikes).toBe(5)
    expect(kw.processes).toBe(2)
    expect(kw.status).toBe('disabled')
    expect(kw.reason).toContain('5 strikes')
    expect(kw.reason).toContain('h:2')
    expect(kw.p50Ms).toBe(2)
    expect(kw.p99Ms).toBe(100)
  })

  it('redacts authorization headers in log lines', () => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk))
        cb()
      },
    })
    const log = pino(
      { redact: { paths: ['authorization', 'headers.authorization', 'req.headers.authorization', '*.authorization'], censor: '[redacted]' } },
      sink,
    )
    log.info(
      { req: { headers: { authorization: 'Bearer secret-1' } }, headers: { authorization: 'Bearer secret-2' }, authorization: 'Bearer secret-3' },
      'request',
    )
    expect(lines.join('')).not.toContain('secret')
    // and the logger Skysift really uses is configured the same way
    expect(createLogger('silent')).toBeDefined()
    const src = fs.readFileSync(path.join(ROOT, 'src/logger.ts'), 'utf8')
    for (const p of ['authorization', 'headers.authorization', 'req.headers.authorization']) expect(src).toContain(`'${p}'`)
  })
})

describe('admin session cookies', () => {
  it('signs and checks an expiring session with the admin token', () => {
    const exp = Date.now() + HOUR
    const v = signAdminSession(TOKEN, exp)
    expect(verifyAdminSession(TOKEN, v)).toBe(true)
    expect(verifyAdminSession('another-token-0123456789', v)).toBe(false)
    expect(verifyAdminSession(TOKEN, v, exp + 1)).toBe(false)
    expect(
      verifyAdminSession(
        TOKEN,
        v.replace(/\.(.)/, (_, c) => `.${c === 'A' ? 'B' : 'A'}`),
      ),
    ).toBe(false)
    expect(verifyAdminSession(TOKEN, `${exp + 1000}.${v.split('.')[1]}`)).toBe(false)
    expect(verifyAdminSession(TOKEN, signAdminSession(TOKEN, Date.now() + 30 * 24 * HOUR))).toBe(false)
    expect(verifyAdminSession(TOKEN, undefined)).toBe(false)
  })
})

describe('/metrics, /admin and status on a serving app (real SQLite and Redis)', () => {
  let ctx: AppContext
  let app: Hono
  let close: () => Promise<void>
  let dbPath: string
  let prefix: string
  const cleanups: (() => unknown)[] = []

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    dbPath = path.join(t.dir, 'skysift.db')
    prefix = q.prefix
    const config = testConfig({
      dbPath,
      queuePrefix: prefix,
      publicUrl: 'https://feeds.test',
      serviceDid: 'did:web:feeds.test',
      adminToken: TOKEN,
      metricsToken: METRICS_TOKEN,
    })
    ctx = new AppContext(config, silentLogger)
    const served = createServeApp(ctx)
    app = served.app
    close = served.close
    const writer = countEventKinds(ctx.db.sqlite, new BatchWriter(ctx.db.sqlite))
    const posts = Array.from({ length: 20 }, (_, i) => postEvent(i * 60_000))
    const like: IngestEvent = { t: 'like', uri: 'at://did:plc:l/app.bsky.feed.like/1', author: 'did:plc:l', subject: posts[0].uri }
    writer.write({ id: 'b1', events: [...posts, like], scores: [], eventTime: Date.now() - 5000 })
    ctx.db.sqlite.prepare("INSERT INTO cursors (source, cursor, event_time, updated_at) VALUES ('replay:test', '21', ?, ?)").run(Date.now() - 5000, Date.now())
  })
  afterAll(async () => {
    await close()
    await ctx.close()
    for (const c of cleanups.reverse()) await c()
  })

  const skeleton = (rkey: string) =>
    app.request(`/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(`at://did:web:feeds.test/app.bsky.feed.generator/${rkey}`)}&limit=5`)

  it('serves Prometheus metrics behind the metrics token', async () => {
    expect((await app.request('/metrics')).status).toBe(401)
    expect((await app.request('/metrics', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401)
    for (let i = 0; i < 3; i++) expect((await skeleton('fresh')).status).toBe(200)
    const res = await app.request('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/plain')
    const body = await res.text()
    const value = (line: string) => {
      const m = new RegExp(`^${line.replace(/[{}"=.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(body)
      return m ? Number(m[1]) : undefined
    }
    expect(value('skysift_build_info{version="0.1.0"}') ?? value(`skysift_build_info{version="${ctx.version}"}`)).toBe(1)
    expect(value('skysift_events_total{kind="post"}')).toBe(20)
    expect(value('skysift_events_total{kind="like"}')).toBe(1)
    expect(value('skysift_events_stored_total')).toBe(21)
    expect(value('skysift_ingest_lag_seconds{source="replay:test"}')).toBeGreaterThanOrEqual(4)
    expect(value('skysift_store_lag_seconds')).toBeGreaterThanOrEqual(4)
    expect(value('skysift_feed_cache_misses_total')).toBe(1)
    expect(value('skysift_feed_cache_hits_total')).toBe(2)
    expect(value('skysift_skeleton_request_seconds_count')).toBe(3)
    expect(value('skysift_http_request_duration_seconds_count{method="GET",route="/xrpc/app.bsky.feed.getFeedSkeleton",status="200"}')).toBe(3)
    expect(value('skysift_queue_jobs{queue="events",state="waiting"}')).toBe(0)
    expect(value('skysift_redis_up')).toBe(1)
    expect(value('skysift_posts')).toBe(20)
    expect(value('skysift_subscribers')).toBe(0)
    expect(value('skysift_feed_refresh_age_seconds{feed="fresh"}')).toBeGreaterThanOrEqual(0)
    expect(value('skysift_agent_disabled{agent="keyword"}')).toBe(0)
    expect(body).toMatch(/^skysift_agent_call_seconds\{agent="recency",quantile="0\.5"\} /m)
    expect(body).toMatch(/^process_cpu_seconds_total /m)
    expect(body).toMatch(/^nodejs_eventloop_lag_seconds /m)
    // every name docs/operations.md promises is exported
    const doc = fs.readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8')
    const documented = [...doc.matchAll(/^\| `(skysift_[a-z_]+)`/gm)].map((m) => m[1])
    expect(documented.length).toBeGreaterThan(20)
    for (const name of new Set(documented)) expect(body, name).toContain(`# TYPE ${name.replace(/_(bucket|sum|count)$/, '')} `)
  })

  it('sends pages to the sign-in form and APIs a 401 without the token', async () => {
    const page = await app.request('/admin')
    expect(page.status).toBe(302)
    expect(page.headers.get('location')).toBe('/admin/login?next=%2Fadmin')
    expect((await app.request('/admin/queues')).status).toBe(302)
    expect((await app.request('/admin/api/status')).status).toBe(401)
    expect((await app.request('/admin/api/agents')).status).toBe(401)
    expect((await app.request('/admin/queues/api/queues')).status).toBe(401)
    const form = await app.request('/admin/login?next=%2Fadmin%2Fqueues')
    expect(form.status).toBe(200)
    const html = await form.text()
    expect(html).toContain('name="token"')
    expect(html).toContain('value="/admin/queues"')
  })

  it('accepts the bearer token for APIs', async () => {
    const res = await app.request('/admin/api/status', { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.status).toBe(200)
    const s = await res.json()
    expect(s.ingest.totals.kinds.post).toBe(20)
    expect(s.cache.feeds.map((f: { rkey: string }) => f.rkey)).toEqual(ctx.feeds.map((f) => f.rkey))
    expect((await app.request('/admin/api/agents', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
  })

  it('signs in through the form with a Secure, HttpOnly, SameSite=Strict signed cookie, and signs out', async () => {
    const bad = await app.request('/admin/login', { method: 'POST', body: new URLSearchParams({ token: 'nope-nope-nope-nope', next: '/admin' }) })
    expect(bad.status).toBe(401)
    expect(bad.headers.get('set-cookie')).toBeNull()
    const ok = await app.request('/admin/login', { method: 'POST', body: new URLSearchParams({ token: TOKEN, next: 'https://evil.example/admin' }) })
    expect(ok.status).toBe(303)
    expect(ok.headers.get('location')).toBe('/admin')
    const set = ok.headers.get('set-cookie')!
    expect(set).toMatch(new RegExp(`^${ADMIN_COOKIE}=\\d+\\.[A-Za-z0-9_-]{43};`))
    expect(set).toContain('HttpOnly')
    expect(set).toContain('Secure')
    expect(set).toContain('SameSite=Strict')
    expect(set).toContain('Path=/admin')
    expect(set).not.toContain(TOKEN)
    const cookie = set.split(';')[0]

    const page = await app.request('/admin', { headers: { cookie } })
    expect(page.status).toBe(200)
    const html = await page.text()
    for (const words of [
      'Ingest',
      'Queues',
      'Agents',
      'getFeedSkeleton',
      'cache hit rate',
      'subscribers',
      'Sign out',
      'replay:test',
      '<svg',
      'last minute',
      'last hour',
    ])
      expect(html).toContain(words)
    expect((await app.request('/admin/queues', { headers: { cookie } })).status).toBe(200)
    const queues = await app.request('/admin/queues/api/queues', { headers: { cookie } })
    expect(queues.status).toBe(200)
    expect(((await queues.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).sort()).toEqual(['events', 'refresh', 'store'])
    // a change with the cookie from another origin is refused; from our own pages it passes
    const cross = await app.request('/admin/api/agents/keyword/enable', { method: 'POST', headers: { cookie, origin: 'https://evil.example' } })
    expect(cross.status).toBe(403)
    const same = await app.request('/admin/api/agents/keyword/enable', { method: 'POST', headers: { cookie, origin: 'https://feeds.test' } })
    expect(same.status).toBe(200)

    const out = await app.request('/admin/logout', { method: 'POST', headers: { cookie } })
    expect(out.status).toBe(303)
    expect(out.headers.get('set-cookie')).toMatch(new RegExp(`^${ADMIN_COOKIE}=;.*Max-Age=0`))
    const tampered = cookie.replace(/\.(.)/, (_, c) => `.${c === 'A' ? 'B' : 'A'}`)
    expect((await app.request('/admin', { headers: { cookie: tampered } })).status).toBe(302)
  })

  it('keeps admin routes off when no admin token is set', async () => {
    const t = tempDir()
    const c2 = new AppContext(
      testConfig({ dbPath: path.join(t.dir, 'x.db'), queuePrefix: prefix, adminToken: undefined, metricsToken: undefined }),
      silentLogger,
    )
    const s2 = createServeApp(c2)
    try {
      expect((await s2.app.request('/admin')).status).toBe(404)
      expect((await s2.app.request('/admin/login')).status).toBe(404)
      expect((await s2.app.request('/admin/api/status')).status).toBe(404)
      expect((await s2.app.request('/metrics')).status).toBe(200)
    } finally {
      await s2.close()
      await c2.close()
      t.cleanup()
    }
  })

  it('still answers /metrics and the status API quickly when Redis is down', async () => {
    const t = tempDir()
    const c3 = new AppContext(
      readConfig({}, { dbPath: path.join(t.dir, 'down.db'), queuePrefix: prefix, redisUrl: 'redis://127.0.0.1:9', adminToken: TOKEN, metricsToken: undefined }),
      silentLogger,
    )
    const s3 = createServeApp(c3)
    try {
      const t0 = Date.now()
      const res = await s3.app.request('/metrics')
      expect(res.status).toBe(200)
      expect(await res.text()).toMatch(/^skysift_redis_up 0$/m)
      const st = await s3.app.request('/admin/api/status', { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(st.status).toBe(200)
      const body = await st.json()
      expect(body.redis.ok).toBe(false)
      expect(body.queues.ok).toBe(false)
      expect(Date.now() - t0).toBeLessThan(8000)
    } finally {
      await s3.close()
      await c3.close()
      t.cleanup()
    }
  })

  it('prints the summary with `skysift status`, also as JSON, from another process', async () => {
    const run = promisify(execFile)
    const env = {
      ...process.env,
      SKYSIFT_DB_PATH: dbPath,
      SKYSIFT_QUEUE_PREFIX: prefix,
      SKYSIFT_PUBLIC_URL: 'https://feeds.test',
      SKYSIFT_SERVICE_DID: 'did:web:feeds.test',
      SKYSIFT_LOG_LEVEL: 'silent',
    }
    const text = await run(process.execPath, [path.join(ROOT, 'src/cli.ts'), 'status'], { env, cwd: ROOT })
    expect(text.stdout).toContain('Ingest')
    expect(text.stdout).toContain('replay:test: cursor 21')
    expect(text.stdout).toMatch(/stored: 21 events \(post 20, like 1\)/)
    expect(text.stdout).toContain('Queues')
    const json = await run(process.execPath, [path.join(ROOT, 'src/cli.ts'), 'status', '--json'], { env, cwd: ROOT })
    const s = JSON.parse(json.stdout)
    expect(s.ingest.totals.stored).toBe(21)
    expect(s.redis.ok).toBe(true)
    expect(s.queues.counts.events.waiting).toBe(0)
    expect(formatStatus(s)).toContain('Subscribers')
  })
})

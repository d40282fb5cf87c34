/**
 * Scenario 2 — Redis outage. The whole chain runs on a redis-server of its
 * own while a replay is ingested at its recorded pace and readers ask for
 * feeds; Redis is stopped for a while and started again.
 *
 *  - durable Redis (append-only file): getFeedSkeleton answers 200 from
 *    SQLite throughout, ingest pauses (its cursor stands still) and resumes
 *    by itself, and afterwards the store equals the model: nothing lost;
 *  - Redis without persistence (how compose.yaml and `npm start` run it):
 *    a restart empties the queues, with the backlog of batches the store
 *    had not taken yet. The ingest notices (its epoch key is gone), rewinds
 *    its cursor to the oldest batch not stored and reads from there again:
 *    afterwards the store equals the model, and what was applied twice is
 *    no more than what was read again.
 */
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { writeSyntheticJsonl } from '../../src/ingest/synthetic.ts'
import { checkServed, checkStore, accounting, readWholeFeed, expectStoreMatchesModel } from './support/checks.ts'
import { steadyLoad } from './support/load.ts'
import { modelOfFile } from './support/model.ts'
import { startPipeline } from './support/pipeline.ts'
import { freePort } from './support/procs.ts'
import { ownRedis } from './support/redis.ts'
import { SEED } from './support/rng.ts'
import { createScenario, percentile, queues, report, round, size, sleep, until, type Scenario, settled } from './support/scenario.ts'

const OUTAGE_S = size(8, 60)
const BEFORE_S = size(6, 15)
const AFTER_S = size(8, 30)
const RATE = 1000

/** Runs the chain on its own Redis, stops Redis for OUTAGE_S, starts it again, waits until everything is read and the queues are empty. */
async function outageRun(sc: Scenario & { redis: Awaited<ReturnType<typeof ownRedis>> }, events: number, opts: { holdStoreMs?: number } = {}) {
  const file = path.join(sc.dir, 'events.jsonl')
  await writeSyntheticJsonl(file, { count: events, seed: SEED % 100_000, eventsPerSecond: RATE })
  const model = await modelOfFile(file)
  const p = await startPipeline(sc, { SKYSIFT_SOURCE: `replay:${file}#recorded`, SKYSIFT_BATCH_SIZE: '200' }, { file })
  const q = queues(sc.redisUrl, sc.prefix)
  sc.onCleanup(() => q.close())
  let i = 0
  const load = steadyLoad(() => ({ url: `${p.base}/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(p.feeds[i++ % p.feeds.length])}&limit=30` }), {
    concurrency: 4,
    timeoutMs: 5000,
    pauseMs: 20,
  })
  const health: { at: number; status: number }[] = []
  const cursorAt: { at: number; cursor: number }[] = []
  const watch = setInterval(() => {
    cursorAt.push({ at: Date.now(), cursor: p.cursor() })
    void fetch(`${p.base}/xrpc/_health`, { signal: AbortSignal.timeout(3000) }).then(
      (r) => (health.push({ at: Date.now(), status: r.status }), r.body?.cancel()),
      () => health.push({ at: Date.now(), status: 0 }),
    )
  }, 250)
  try {
    await until('ingest to get going', () => p.cursor() > 0, 30_000)
    await sleep(BEFORE_S * 1000)
    // a store writer that has fallen behind (paused with SIGSTOP) leaves a backlog in Redis
    const storePid = p.procs.store.pid!
    if (opts.holdStoreMs) {
      process.kill(-storePid, 'SIGSTOP')
      await sleep(opts.holdStoreMs)
    }
    const backlogAtStop = await q.counts()
    // the line ranges of the batches Redis holds now (job ids end in _<first line>_<last line>_<events>), each once:
    // the score worker still runs, so a batch read among `events` may be among `store` too by the second read
    const heldJobs = [
      ...(await q.events.getJobs(['waiting', 'active', 'delayed', 'prioritized'])),
      ...(await q.store.getJobs(['waiting', 'active', 'delayed', 'prioritized'])),
    ]
    const heldRanges = [
      ...new Map(
        heldJobs.flatMap((j) => {
          const m = /_(\d+)_(\d+)_\d+$/.exec(j.id ?? '')
          return m ? [[`${m[1]}_${m[2]}`, [Number(m[1]), Number(m[2])] as [number, number]] as const] : []
        }),
      ).values(),
    ]
    const storedAtStop = p.stored()
    const from = Date.now()
    await sc.redis.stop()
    const cursorAtStop = p.cursor()
    await sleep(OUTAGE_S * 1000)
    const cursorBeforeRestart = p.cursor()
    const storedBeforeRestart = p.stored()
    await sc.redis.start()
    const to = Date.now()
    if (opts.holdStoreMs) process.kill(-storePid, 'SIGCONT')
    await sleep(AFTER_S * 1000)
    await until(
      'the whole file read and the queues drained',
      async () => {
        const c = p.crashed()
        if (c.length) throw new Error(c.join('\n'))
        return p.cursor() === model.lines && (await q.pending()) === 0
      },
      size(180, 600) * 1000,
      500,
    )
    await settled(p.stored, () => q.pending())
    const samples = await load.stop()
    clearInterval(watch)
    const served: string[][] = []
    for (const f of p.feeds) served.push((await readWholeFeed(p.base, f)).posts)
    const during = samples.filter((s) => s.at >= from && s.at <= to)
    const bad = samples.filter((s) => s.status !== 200)
    const outcome = {
      model,
      p,
      q,
      samples,
      during,
      bad,
      health,
      cursorAt,
      outage: { from, to },
      cursorAtStop,
      cursorBeforeRestart,
      storedAtStop,
      storedBeforeRestart,
      backlogAtStop,
      heldRanges,
      served,
      figures: {
        seed: SEED,
        events: model.events,
        outage_s: round((to - from) / 1000),
        requests: samples.length,
        requests_during_outage: during.length,
        non_200: bad.length,
        non_200_during_outage: during.filter((s) => s.status !== 200).length,
        p99_ms_before: round(
          percentile(
            samples.filter((s) => s.at < from).map((s) => s.ms),
            99,
          ),
        ),
        p99_ms_during_outage: round(
          percentile(
            during.map((s) => s.ms),
            99,
          ),
        ),
        p99_ms_after: round(
          percentile(
            samples.filter((s) => s.at > to).map((s) => s.ms),
            99,
          ),
        ),
        health_503_during_outage: health.filter((h) => h.at >= from + 1000 && h.at <= to && h.status === 503).length,
        cursor_at_stop: cursorAtStop,
        cursor_before_restart: cursorBeforeRestart,
        events_stored: p.stored(),
        backlog_at_stop: {
          events: backlogAtStop.events.waiting + backlogAtStop.events.active,
          store: backlogAtStop.store.waiting + backlogAtStop.store.active,
        },
      },
    }
    return outcome
  } finally {
    clearInterval(watch)
    await load.stop()
  }
}

describe('faults: Redis outage during ingest and serving', () => {
  const scenarios: Scenario[] = []
  afterAll(async () => {
    for (const s of scenarios) await s.cleanup()
  })

  it(
    `durable Redis stopped for ${OUTAGE_S} s: serving stays 200, ingest pauses and resumes, nothing is lost`,
    async () => {
      const port = await freePort()
      const base = createScenario('outage', { redisUrl: `redis://127.0.0.1:${port}`, ownRedis: true })
      scenarios.push(base)
      const redis = await ownRedis(base.dir, port, { persistent: true })
      base.onCleanup(() => redis.proc.kill9())
      await redis.start()
      const o = await outageRun({ ...base, redis }, (BEFORE_S + OUTAGE_S + AFTER_S + 4) * RATE)
      const check = checkStore(o.p.db, o.model)
      const acc = await accounting(o.p.db, o.model, o.q.store)
      const servedCheck = o.served.map((posts) => checkServed(o.p.db, o.model, posts))
      const resumed = o.p.procs.ingest.logLines('redis is back; ingest resumed')
      const paused = o.p.procs.ingest.logLines('cannot queue events; ingest paused')
      // cursor movement while Redis was down (after the batch in flight at the stop)
      const cursorDuring = o.cursorAt.filter((c) => c.at >= o.outage.from + 6000 && c.at <= o.outage.to).map((c) => c.cursor)
      report('redis-outage', {
        ...o.figures,
        redis: 'durable (appendonly, fsync always)',
        ingest_paused_logs: paused.length,
        ingest_resumed_logs: resumed.length,
        posts_model: check.strictPosts,
        posts_missing: check.missingPosts.length,
        posts_extra: check.extraPosts.length,
        events_lost: Math.max(0, o.model.events - o.p.stored()),
        likes_missing: check.likesMissing,
        likes_not_stored: acc.likesMissing.length,
        duplicates_applied: o.p.stored() - o.model.events,
        duplicates_bound: acc.duplicateBound,
        served_items_checked: o.served.reduce((n, x) => n + x.length, 0),
      })
      expect(o.p.crashed()).toEqual([])
      // serving from SQLite throughout
      expect(o.during.length).toBeGreaterThan(OUTAGE_S * 10)
      expect(o.bad.slice(0, 5)).toEqual([])
      expect(o.figures.health_503_during_outage).toBeGreaterThan(0)
      // ingest paused (cursor stood still while Redis was down) and resumed on its own
      expect(o.cursorAtStop).toBeLessThan(o.model.lines)
      expect(new Set(cursorDuring).size).toBeLessThanOrEqual(1)
      expect(paused.length).toBeGreaterThan(0)
      expect(resumed.length).toBeGreaterThan(0)
      // Redis kept its data: nothing is read again
      expect(o.p.procs.ingest.logLines('redis lost queued batches; ingest rewound')).toEqual([])
      expect(o.p.cursor()).toBe(o.model.lines)
      // nothing lost, nothing doubled
      expect(await o.q.failed()).toBe(0)
      expect(o.p.stored()).toBeGreaterThanOrEqual(o.model.events)
      expect(acc.uncoveredEventLines.slice(0, 10)).toEqual([])
      expect(o.p.stored() - o.model.events).toBeLessThanOrEqual(acc.duplicateBound)
      expectStoreMatchesModel(check, acc.likesMissing)
      for (const c of servedCheck) {
        expect(c.notStored.concat(c.notLive).slice(0, 10)).toEqual([])
        expect(c.repeated).toBe(0)
      }
    },
    size(6, 20) * 60_000,
  )

  it(
    `Redis without persistence restarted after ${OUTAGE_S} s: serving and ingest survive, the ingest reads the lost backlog again`,
    async () => {
      const port = await freePort()
      // the store writer is held (SIGSTOP) for 3 s before Redis goes away, so Redis holds a backlog when it restarts empty
      const base = createScenario('outage-volatile', { redisUrl: `redis://127.0.0.1:${port}`, ownRedis: true })
      scenarios.push(base)
      const redis = await ownRedis(base.dir, port, { persistent: false })
      base.onCleanup(() => redis.proc.kill9())
      await redis.start()
      const o = await outageRun({ ...base, redis }, (BEFORE_S + OUTAGE_S + AFTER_S + 4) * RATE, { holdStoreMs: 3000 })
      const check = checkStore(o.p.db, o.model)
      const rewinds = o.p.procs.ingest.logLines('redis lost queued batches; ingest rewound') as { from?: number; to?: number; pendingBatches?: number }[]
      const reread = rewinds.reduce((n, r) => n + Math.max(0, (r.from ?? 0) - (r.to ?? 0)), 0)
      const backlogJobs = o.figures.backlog_at_stop.events + o.figures.backlog_at_stop.store
      report('redis-outage-volatile', {
        ...o.figures,
        redis: 'no persistence (compose.yaml, npm start)',
        held_batches_at_stop: o.heldRanges.length,
        rewinds: rewinds.length,
        pending_batches_at_rewind: rewinds.map((r) => r.pendingBatches),
        lines_read_again: reread,
        events_lost: Math.max(0, o.model.events - o.p.stored()),
        duplicates_applied: o.p.stored() - o.model.events,
        posts_missing: check.missingPosts.length,
        deleted_posts_still_stored: check.extraPosts.length,
        likes_missing: check.likesMissing,
        likes_over_counted_posts: check.overCounted.length,
      })
      expect(o.p.crashed()).toEqual([])
      expect(o.bad.slice(0, 5)).toEqual([])
      expect(o.during.length).toBeGreaterThan(OUTAGE_S * 10)
      expect(o.p.cursor()).toBe(o.model.lines)
      // Redis held a backlog when it went; the ingest rewound once, to before it
      expect(backlogJobs).toBeGreaterThan(0)
      expect(rewinds).toHaveLength(1)
      expect(rewinds[0].pendingBatches).toBeGreaterThanOrEqual(o.heldRanges.length)
      // nothing lost: every event stored, posts and likes exactly the model's; what was applied twice was read twice
      expect(await o.q.failed()).toBe(0)
      expect(o.p.stored()).toBeGreaterThanOrEqual(o.model.events)
      expect(o.p.stored() - o.model.events).toBeLessThanOrEqual(reread)
      expectStoreMatchesModel(check)
    },
    size(6, 20) * 60_000,
  )
})

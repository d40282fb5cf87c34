import type { Context, Next } from 'hono'
import { routePath } from 'hono/route'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { OpsStatus } from '../../status/status.ts'
import { JOB_STATES } from '../../status/status.ts'

const SKELETON_PATH = '/xrpc/app.bsky.feed.getFeedSkeleton'
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/**
 * The Prometheus registry of one serving process. Most figures are pulled
 * when scraped (from a status snapshot: SQLite counters and cursors, queue
 * counts, every process's report); HTTP timings and cache outcomes are
 * counted as they happen. Names and labels: docs/operations.md.
 */
export class OpsMetrics {
  readonly registry = new Registry()
  private readonly m
  private readonly httpChildren = new Map<string, { observe(v: number): void }>()

  constructor(version: string, opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry]
    const gauge = <L extends string>(name: string, help: string, labelNames: L[] = []) => new Gauge<L>({ name, help, labelNames, registers: r })
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) => new Counter<L>({ name, help, labelNames, registers: r })
    this.m = {
      build: gauge('skysift_build_info', 'Always 1; the version is a label', ['version']),
      redisUp: gauge('skysift_redis_up', '1 when Redis answered during this scrape'),
      ingesting: gauge('skysift_ingest_connected', '1 while the reporting ingest is connected to its source or reading its file'),
      ingestLag: gauge('skysift_ingest_lag_seconds', 'Now minus the event time of the newest event covered by the saved cursor', ['source']),
      cursorAge: gauge('skysift_ingest_cursor_age_seconds', 'Time since the source cursor was last saved', ['source']),
      storeLag: gauge('skysift_store_lag_seconds', 'Now minus the event time of the newest stored batch'),
      events: counter('skysift_events_total', 'Events stored, by kind (post, like, repost, follow, delete, account, mix)', ['kind']),
      eventsStored: counter('skysift_events_stored_total', 'Events stored, all kinds'),
      ingested: counter('skysift_ingest_events_total', 'Events the reporting ingest process read, queued, rejected (since it started)', ['outcome']),
      ingestRedisErrors: counter('skysift_ingest_redis_errors_total', 'Failed attempts of the reporting ingest process to queue a batch (since it started)'),
      ingestBackpressure: counter(
        'skysift_ingest_backpressure_seconds_total',
        'Time the reporting ingest process waited on a full events queue (since it started)',
      ),
      queueJobs: gauge('skysift_queue_jobs', 'BullMQ jobs by queue and state', ['queue', 'state']),
      queueWorkers: gauge('skysift_queue_workers', 'Workers connected to a queue', ['queue']),
      agentCalls: counter('skysift_agent_calls_total', 'Agent batch calls, summed over live processes', ['agent']),
      agentPosts: counter('skysift_agent_posts_total', 'Posts given to an agent, summed over live processes', ['agent']),
      agentStrikes: counter('skysift_agent_strikes_total', 'Strikes (throws, timeouts, bad output), summed over live processes', ['agent']),
      agentSeconds: gauge('skysift_agent_call_seconds', 'Agent batch call duration quantiles over recent calls in every live process', ['agent', 'quantile']),
      agentDisabled: gauge('skysift_agent_disabled', '1 when the agent is disabled in some process', ['agent']),
      cacheHits: counter('skysift_feed_cache_hits_total', 'getFeedSkeleton first pages served from a cached list (fresh or stale), this process'),
      cacheStale: counter('skysift_feed_cache_stale_total', 'Cache hits on a list past its TTL (served, refresh requested), this process'),
      cacheMisses: counter('skysift_feed_cache_misses_total', 'First pages whose list had to be built during the request, this process'),
      refreshAge: gauge('skysift_feed_refresh_age_seconds', "Age of the newest build of the feed's default list", ['feed']),
      buildSeconds: gauge('skysift_feed_build_seconds', "Duration of the newest build of the feed's default list", ['feed']),
      lists: gauge('skysift_feed_lists', 'Distinct ranked lists kept for a feed (mixes and readers overlays)', ['feed']),
      snapshots: gauge('skysift_feed_snapshots', 'Snapshots kept for a feed', ['feed']),
      skeleton: new Histogram({
        name: 'skysift_skeleton_request_seconds',
        help: 'getFeedSkeleton response time, this process',
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      http: new Histogram({
        name: 'skysift_http_request_duration_seconds',
        help: 'HTTP response time by route, this process',
        labelNames: ['method', 'route', 'status'],
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      subscribers: gauge('skysift_subscribers', 'Readers with a saved mix'),
      mixes: gauge('skysift_mixes', 'Saved mixes by source (private: set through putMix; record: from the reader repo)', ['source']),
      mixLists: gauge('skysift_mix_lists', 'Distinct (feed, mix) pairs among saved mixes'),
      posts: gauge('skysift_posts', 'Posts stored (candidates)'),
      sqliteBytes: gauge('skysift_sqlite_bytes', 'Size of the SQLite file and its WAL', ['file']),
      retention: counter('skysift_retention_deleted_total', 'Rows removed by retention, by what', ['table']),
      retentionLast: gauge('skysift_retention_last_run_timestamp_seconds', 'When retention last ran'),
      processes: gauge('skysift_processes', 'Skysift processes reporting, by role', ['role']),
    }
    this.m.build.set({ version }, 1)
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry })
  }

  /** Records one getFeedSkeleton response time. */
  observeSkeleton(seconds: number): void {
    this.m.skeleton.observe(seconds)
  }

  /** Hono middleware timing every response by its route. */
  httpTiming(onSkeleton?: (ms: number) => void) {
    return async (c: Context, next: Next) => {
      const t0 = performance.now()
      try {
        await next()
      } finally {
        const ms = performance.now() - t0
        const status = c.res.status
        let route = 'unmatched'
        try {
          const p = routePath(c, -1)
          if (status !== 404 || (p !== '*' && p !== '/*')) route = p
        } catch {
          // no route matched
        }
        // bound children are cached: labelling on every request costs more than the observation
        const key = `${c.req.method} ${status} ${route}`
        let child = this.httpChildren.get(key)
        if (!child) {
          child = this.m.http.labels({ method: c.req.method, route, status: String(status) })
          if (this.httpChildren.size < 2000) this.httpChildren.set(key, child)
        }
        child.observe(ms / 1000)
        if (c.req.path === SKELETON_PATH && c.req.method === 'GET') {
          this.m.skeleton.observe(ms / 1000)
          onSkeleton?.(ms)
        }
      }
    }
  }

  /** Sets every pulled figure from a status snapshot. */
  update(s: OpsStatus): void {
    const m = this.m
    const setCounter = <L extends string>(c: Counter<L>, values: [Partial<Record<L, string>>, number][]) => {
      c.reset()
      for (const [labels, v] of values) c.inc(labels, Math.max(0, v))
    }
    const resetGauge = <L extends string>(g: Gauge<L>, values: [Partial<Record<L, string>>, number | null][]) => {
      g.reset()
      for (const [labels, v] of values) if (v !== null && Number.isFinite(v)) g.set(labels, v)
    }
    m.redisUp.set(s.redis.ok ? 1 : 0)
    m.ingesting.set(s.sourceState.ingesting ? 1 : 0)
    resetGauge(
      m.ingestLag,
      s.ingest.cursors.map((c) => [{ source: c.source }, c.lagS]),
    )
    resetGauge(
      m.cursorAge,
      s.ingest.cursors.map((c) => [{ source: c.source }, c.savedAgoS]),
    )
    resetGauge(m.storeLag, [[{}, s.store.lagS]])
    setCounter(
      m.events,
      Object.entries(s.ingest.totals.kinds).map(([kind, v]) => [{ kind }, v]),
    )
    setCounter(m.eventsStored, [[{}, s.ingest.totals.stored]])
    const p = s.ingest.process
    setCounter(
      m.ingested,
      p
        ? [
            [{ outcome: 'received' }, p.received],
            [{ outcome: 'queued' }, p.queued],
            [{ outcome: 'rejected' }, p.rejected],
          ]
        : [],
    )
    setCounter(m.ingestRedisErrors, p ? [[{}, p.redisErrors]] : [])
    setCounter(m.ingestBackpressure, p ? [[{}, p.pausedForBackpressureMs / 1000]] : [])
    m.queueJobs.reset()
    m.queueWorkers.reset()
    for (const [queue, counts] of Object.entries(s.queues.counts)) {
      for (const state of JOB_STATES) m.queueJobs.set({ queue, state }, counts[state])
      const w = s.queues.workers[queue as keyof typeof s.queues.workers]
      if (w !== undefined && w >= 0) m.queueWorkers.set({ queue }, w)
    }
    setCounter(
      m.agentCalls,
      s.agents.map((a) => [{ agent: a.id }, a.calls]),
    )
    setCounter(
      m.agentPosts,
      s.agents.map((a) => [{ agent: a.id }, a.posts]),
    )
    setCounter(
      m.agentStrikes,
      s.agents.map((a) => [{ agent: a.id }, a.strikes]),
    )
    m.agentSeconds.reset()
    for (const a of s.agents) {
      // ms → s, kept to a microsecond's precision (no 0.00007099999999999999)
      if (a.p50Ms !== null) m.agentSeconds.set({ agent: a.id, quantile: '0.5' }, Math.round(a.p50Ms * 1000) / 1e6)
      if (a.p99Ms !== null) m.agentSeconds.set({ agent: a.id, quantile: '0.99' }, Math.round(a.p99Ms * 1000) / 1e6)
    }
    resetGauge(
      m.agentDisabled,
      s.agents.map((a) => [{ agent: a.id }, a.status === 'disabled' ? 1 : 0]),
    )
    resetGauge(
      m.refreshAge,
      s.cache.feeds.map((f) => [{ feed: f.rkey }, f.defaultList?.ageS ?? null]),
    )
    resetGauge(
      m.buildSeconds,
      s.cache.feeds.map((f) => [{ feed: f.rkey }, f.defaultList ? f.defaultList.buildMs / 1000 : null]),
    )
    resetGauge(
      m.lists,
      s.cache.feeds.map((f) => [{ feed: f.rkey }, f.lists]),
    )
    resetGauge(
      m.snapshots,
      s.cache.feeds.map((f) => [{ feed: f.rkey }, f.snapshots]),
    )
    m.subscribers.set(s.subscribers)
    resetGauge(m.mixes, [
      [{ source: 'private' }, s.mixes.private],
      [{ source: 'record' }, s.mixes.record],
    ])
    m.mixLists.set(s.mixes.lists)
    m.posts.set(s.posts.count)
    resetGauge(m.sqliteBytes, [
      [{ file: 'db' }, s.sqlite.bytes],
      [{ file: 'wal' }, s.sqlite.walBytes],
    ])
    setCounter(
      m.retention,
      Object.entries(s.retention.deleted).map(([what, v]) => [{ table: what.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`) }, v]),
    )
    resetGauge(m.retentionLast, [[{}, s.retention.lastRunAt === null ? null : s.retention.lastRunAt / 1000]])
    const roles = new Map<string, number>()
    for (const pr of s.processes) for (const role of pr.roles) roles.set(role, (roles.get(role) ?? 0) + 1)
    resetGauge(
      m.processes,
      [...roles].map(([role, n]) => [{ role }, n]),
    )
  }

  /** This process's cache outcomes (counted by the serve stats). */
  updateLocal(cache: { fresh: number; stale: number; misses: number }): void {
    this.m.cacheHits.reset()
    this.m.cacheHits.inc(cache.fresh + cache.stale)
    this.m.cacheStale.reset()
    this.m.cacheStale.inc(cache.stale)
    this.m.cacheMisses.reset()
    this.m.cacheMisses.inc(cache.misses)
  }

  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType }
  }
}

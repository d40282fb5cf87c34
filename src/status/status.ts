import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { SourceSpec } from '../config.ts'
import type { Feed } from '../feeds.ts'
import { QUEUE, type QueueName } from '../contracts/jobs.ts'
import type { AgentHost } from '../score/host.ts'
import type { Sqlite } from '../store/db.ts'
import { KIND_COUNTER_PREFIX } from '../store/event-kinds.ts'
import { RETENTION_COUNTERS } from '../store/retention.ts'
import { StatusQueries } from '../store/status.ts'
import { quantile } from '../util/quantile.ts'
import { withTimeout } from '../util/timeout.ts'
import { readProcessReports, type IngestReport, type IngestView, type ProcessReport } from './report.ts'
import { ratesOver, readSamples, type Rates, type Sample } from './sampler.ts'

export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const
export type JobState = (typeof JOB_STATES)[number]

export interface CursorStatus {
  source: string
  cursor: string
  /** event time (ms) of the newest event the saved cursor covers */
  eventTime: number | null
  updatedAt: number
  lagS: number | null
  savedAgoS: number
}

export interface FeedStatus {
  rkey: string
  uri: string
  windowHours: number
  /** the list anonymous and new readers get */
  defaultList: { builtAt: number; ageS: number; buildMs: number; size: number } | null
  /** distinct ranked lists (mixes, readers' overlays) */
  lists: number
  snapshots: number
  newestBuiltAt: number | null
}

export interface DbStatus {
  counters: Record<string, number>
  stored: number
  kinds: Record<string, number>
  cursors: CursorStatus[]
  store: { lastEventTime: number | null; lagS: number | null }
  posts: { count: number; oldest: number | null }
  feeds: FeedStatus[]
  mixes: { private: number; record: number; subscribers: number; lists: number }
  sqlite: { file: string; bytes: number; walBytes: number }
  retention: { lastRunAt: number | null; runs: number; deleted: Record<string, number> }
}

export interface QueueStatus {
  ok: boolean
  error?: string
  counts: Partial<Record<QueueName, Record<JobState, number>>>
  workers: Partial<Record<QueueName, number>>
}

export interface AgentView {
  id: string
  kind: string
  title: string
  status: 'active' | 'disabled'
  reason: string | null
  calls: number
  posts: number
  strikes: number
  p50Ms: number | null
  p99Ms: number | null
  lastError: string | null
  /** processes that called it */
  processes: number
}

/**
 * The ingest as the health check and the status pages give it: whether
 * events are coming in, and what the source is doing.
 */
export interface IngestHealth {
  /** connected to a live source, or reading a file */
  ingesting: boolean
  /** the source's name (its cursor key), null when no ingest reports */
  source: string | null
  /** the source's state; `unknown` when no ingest process reports */
  state: SourceStateName | 'unknown'
  attempt: number
  nextTryInS: number | null
  lastError: string | null
  /** seconds in this state */
  forS: number | null
}

type SourceStateName = NonNullable<IngestReport['state']>['state']

/** The ingest's health from its report (null: no ingest process reports). */
export function ingestHealth(r: Pick<IngestReport, 'source' | 'state'> | null, now = Date.now()): IngestHealth {
  const st = r?.state
  if (!r || !st) return { ingesting: false, source: r?.source ?? null, state: 'unknown', attempt: 0, nextTryInS: null, lastError: null, forS: null }
  return {
    ingesting: st.state === 'connected' || st.state === 'reading',
    source: r.source,
    state: st.state,
    attempt: st.attempt,
    nextTryInS: st.nextTryAt === null ? null : Math.max(0, round((st.nextTryAt - now) / 1000, 1)),
    lastError: st.lastError,
    forS: round((now - st.since) / 1000, 1),
  }
}

/**
 * The ingest's health as the health check asks for it, as often as it likes: this process's own ingest when one
 * runs here, else the report of the process that runs it.
 */
export function ingestHealthReader(local: () => IngestView | undefined, redis: Redis, queuePrefix: string): () => Promise<IngestHealth> {
  let remote: { at: number; report: Promise<IngestReport | null> } | null = null
  return async () => {
    const here = local()
    if (here) return ingestHealth({ ...here.stats, source: here.source, state: here.state })
    // @NOTE the ingest runs in another process: its report in Redis (at most ~10 s old) says how it is doing,
    // read at most every 2 s however often a load balancer asks
    if (!remote || Date.now() - remote.at > 2000) {
      const reports = readProcessReports(redis, queuePrefix, 1000).catch(() => [])
      remote = { at: Date.now(), report: reports.then((r) => r.find((p) => p.ingest)?.ingest ?? null) }
    }
    return ingestHealth(await remote.report)
  }
}

/** The source's state in a few words: "connected", "retrying (attempt 3, next try in 12 s): <error>", "replay finished". */
export function sourceStateText(h: IngestHealth): string {
  switch (h.state) {
    case 'unknown':
      return h.source ? 'state not reported' : 'no ingest process is reporting'
    case 'retrying':
      return `not connected, retrying (attempt ${h.attempt}${h.nextTryInS === null ? '' : `, next try in ${fmtDuration(h.nextTryInS)}`})${h.lastError ? `; last error: ${h.lastError}` : ''}`
    case 'connecting':
      return 'connecting'
    case 'connected':
      return `connected for ${fmtDuration(h.forS)}`
    case 'reading':
      return 'reading the file'
    case 'finished':
      return `replay finished ${fmtDuration(h.forS)} ago; no new events`
    case 'stopped':
      return `stopped${h.lastError ? `; last error: ${h.lastError}` : ''}`
  }
}

export interface OpsStatus {
  at: number
  version: string
  /** the running ingest's source (else the configured one) */
  source: string
  /** the source's state, from the ingest process's report */
  sourceState: IngestHealth
  ingest: {
    cursors: CursorStatus[]
    /** lag of the most recently saved cursor */
    lagS: number | null
    rates: { minute: Rates | null; hour: Rates | null }
    totals: { stored: number; kinds: Record<string, number> }
    /** the ingest process's own counters, when one reports */
    process: (ProcessReport['ingest'] & { id: string }) | null
  }
  store: DbStatus['store']
  queues: QueueStatus
  agents: AgentView[]
  cache: {
    fresh: number
    stale: number
    misses: number
    /** (fresh + stale) / all lookups, null before the first */
    hitRate: number | null
    feeds: FeedStatus[]
  }
  skeleton: { count: number; p50Ms: number | null; p99Ms: number | null }
  subscribers: number
  mixes: DbStatus['mixes']
  posts: DbStatus['posts']
  sqlite: DbStatus['sqlite']
  retention: DbStatus['retention']
  processes: { id: string; roles: string[]; version: string; ageS: number; uptimeS: number; rssMb: number }[]
  redis: { ok: boolean; error?: string }
  samples: Sample[]
}

/** Reads what the SQLite file knows. Cheap enough to run every few seconds. */
export class DbStatusReader {
  private readonly q: StatusQueries
  private readonly feeds: Feed[]

  constructor(db: Sqlite, feeds: Feed[]) {
    this.q = new StatusQueries(db)
    this.feeds = feeds
  }

  counters(): Record<string, number> {
    return this.q.counters()
  }

  /** A sample of the cumulative counters and the lag, for rates. */
  sample(now = Date.now()): Sample {
    const c = this.counters()
    const cursors = this.cursors(now)
    return { t: now, stored: c.events_stored ?? 0, kinds: kindsOf(c), lagS: cursors[0]?.lagS ?? null }
  }

  cursors(now = Date.now()): CursorStatus[] {
    return this.q.cursors().map((r) => ({
      ...r,
      // @NOTE a file's cursor stops when the file ends: its lag is how far behind its events were when read, not a
      // figure that keeps growing after the replay has finished
      lagS: r.eventTime ? round(((r.source.startsWith('replay:') ? r.updatedAt : now) - r.eventTime) / 1000, 1) : null,
      savedAgoS: round((now - r.updatedAt) / 1000, 1),
    }))
  }

  read(now = Date.now()): DbStatus {
    const counters = this.counters()
    const posts = this.q.posts()
    const lists = new Map(this.q.listsByFeed().map((r) => [r.feed, r]))
    const feeds: FeedStatus[] = this.feeds.map((f) => {
      const d = this.q.newestList(f.uri, f.defaults.fingerprint)
      const l = lists.get(f.uri)
      return {
        rkey: f.rkey,
        uri: f.uri,
        windowHours: f.windowHours,
        defaultList: d ? { ...d, ageS: round((now - d.builtAt) / 1000, 1), buildMs: round(d.buildMs, 1) } : null,
        lists: l?.lists ?? 0,
        snapshots: l?.snapshots ?? 0,
        newestBuiltAt: l?.newest ?? null,
      }
    })
    const bySource = this.q.mixesBySource()
    const lastEventTime = counters.last_event_time ?? null
    const deleted: Record<string, number> = {}
    for (const k of RETENTION_COUNTERS) deleted[k] = counters[`retention_${k}`] ?? 0
    return {
      counters,
      stored: counters.events_stored ?? 0,
      kinds: kindsOf(counters),
      cursors: this.cursors(now),
      store: { lastEventTime, lagS: lastEventTime ? round((now - lastEventTime) / 1000, 1) : null },
      posts,
      feeds,
      mixes: {
        private: bySource.get('private') ?? 0,
        record: bySource.get('record') ?? 0,
        subscribers: this.q.subscribers(),
        lists: this.q.mixLists(),
      },
      sqlite: this.q.files(),
      retention: { lastRunAt: counters.retention_last_run ?? null, runs: counters.retention_runs ?? 0, deleted },
    }
  }
}

/** Stored events by kind, from the `events:<kind>` counters. */
export function kindsOf(counters: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(counters)) if (k.startsWith(KIND_COUNTER_PREFIX)) out[k.slice(KIND_COUNTER_PREFIX.length)] = v
  return out
}

/** Job counts of every queue; never waits more than `timeoutMs`. */
export async function queueStatus(queues: Partial<Record<QueueName, Queue>>, timeoutMs = 1000): Promise<QueueStatus> {
  const out: QueueStatus = { ok: true, counts: {}, workers: {} }
  try {
    await withTimeout(
      Promise.all(
        Object.entries(queues).map(async ([name, q]) => {
          const c = await q!.getJobCounts(...JOB_STATES)
          out.counts[name as QueueName] = Object.fromEntries(JOB_STATES.map((s) => [s, c[s] ?? 0])) as Record<JobState, number>
          // @NOTE CLIENT LIST may be refused by managed Redis: the count is then left out
          out.workers[name as QueueName] = await q!.getWorkersCount().catch(() => -1)
        }),
      ),
      timeoutMs,
    )
  } catch (err) {
    return { ok: false, error: (err as Error).message, counts: out.counts, workers: out.workers }
  }
  return out
}

/** Merges the host's catalog with every process's agent figures. */
export function mergeAgents(host: AgentHost | null, reports: ProcessReport[]): AgentView[] {
  const views = new Map<string, AgentView & { samples: number[] }>()
  for (const a of host?.describe() ?? []) {
    views.set(a.id, {
      id: a.id,
      kind: a.kind,
      title: a.title,
      status: a.status,
      reason: a.reason,
      calls: 0,
      posts: 0,
      strikes: 0,
      p50Ms: null,
      p99Ms: null,
      lastError: null,
      processes: 0,
      samples: [],
    })
  }
  for (const r of reports) {
    for (const a of r.agents) {
      let v = views.get(a.id)
      if (!v) {
        v = {
          id: a.id,
          kind: a.kind,
          title: a.id,
          status: 'active',
          reason: null,
          calls: 0,
          posts: 0,
          strikes: 0,
          p50Ms: null,
          p99Ms: null,
          lastError: null,
          processes: 0,
          samples: [],
        }
        views.set(a.id, v)
      }
      v.calls += a.calls
      v.posts += a.posts
      v.strikes += a.strikes
      v.lastError = a.lastError ?? v.lastError
      if (a.calls) v.processes++
      v.samples.push(...a.recentMs)
      if (a.disabled) {
        v.status = 'disabled'
        v.reason = `${a.disabled} (in ${r.roles.join('+')} ${r.id})`
      }
    }
  }
  return [...views.values()].map(({ samples, ...v }) => ({
    ...v,
    p50Ms: roundOrNull(quantile(samples, 0.5), 3),
    p99Ms: roundOrNull(quantile(samples, 0.99), 3),
  }))
}

export interface StatusDeps {
  db: Sqlite
  feeds: Feed[]
  host: AgentHost | null
  version: string
  source: SourceSpec
  queuePrefix: string
  redis: Redis | null
  queues: Partial<Record<QueueName, Queue>>
  /** this process's own report, fresher than the one it published (given that one, when found) */
  self?: (published?: ProcessReport) => ProcessReport
  /** samples kept in this process (else read from Redis) */
  samples?: () => Sample[]
  dbReader?: DbStatusReader
  timeoutMs?: number
}

/** The whole deployment's status: SQLite, the queues, and every live process's report. */
export async function collectStatus(d: StatusDeps, now = Date.now()): Promise<OpsStatus> {
  const db = (d.dbReader ?? new DbStatusReader(d.db, d.feeds)).read(now)
  const timeoutMs = d.timeoutMs ?? 1500
  const redis: OpsStatus['redis'] = { ok: true }
  let reports: ProcessReport[] = []
  let samples: Sample[] = d.samples?.() ?? []
  const queuesP = queueStatus(d.queues, timeoutMs)
  if (d.redis) {
    const r = d.redis
    const [rep, smp] = await Promise.allSettled([
      readProcessReports(r, d.queuePrefix, timeoutMs),
      d.samples ? Promise.resolve(samples) : readSamples(r, d.queuePrefix, timeoutMs),
    ])
    if (rep.status === 'fulfilled') reports = rep.value
    else Object.assign(redis, { ok: false, error: (rep.reason as Error).message })
    if (smp.status === 'fulfilled') samples = smp.value
  } else {
    Object.assign(redis, { ok: false, error: 'no Redis connection' })
  }
  if (d.self) {
    const id = d.self().id
    const self = d.self(reports.find((r) => r.id === id))
    reports = [...reports.filter((r) => r.id !== id), self].sort((a, b) => a.id.localeCompare(b.id))
  }
  const queues = await queuesP
  if (!queues.ok && redis.ok) Object.assign(redis, { ok: false, error: queues.error })

  const withNow = [...samples.filter((s) => s.t < now - 1000), { t: now, stored: db.stored, kinds: db.kinds, lagS: db.cursors[0]?.lagS ?? null }]
  const serve = reports.filter((r) => r.serve)
  const cache = { fresh: 0, stale: 0, misses: 0 }
  const skeletonMs: number[] = []
  let skeletonCount = 0
  for (const r of serve) {
    cache.fresh += r.serve!.cache.fresh
    cache.stale += r.serve!.cache.stale
    cache.misses += r.serve!.cache.misses
    skeletonCount += r.serve!.skeleton.count
    skeletonMs.push(...r.serve!.skeleton.recentMs)
  }
  const lookups = cache.fresh + cache.stale + cache.misses
  const ingestProc = reports.find((r) => r.ingest)
  return {
    at: now,
    version: d.version,
    source: ingestProc ? ingestProc.ingest!.source : sourceLabel(d.source),
    sourceState: ingestHealth(ingestProc?.ingest ?? null, now),
    ingest: {
      cursors: db.cursors,
      lagS: db.cursors[0]?.lagS ?? null,
      rates: { minute: ratesOver(withNow, 60_000, now), hour: ratesOver(withNow, 3_600_000, now) },
      totals: { stored: db.stored, kinds: db.kinds },
      process: ingestProc ? { ...ingestProc.ingest!, id: ingestProc.id } : null,
    },
    store: db.store,
    queues,
    agents: mergeAgents(d.host, reports),
    cache: { ...cache, hitRate: lookups ? round((cache.fresh + cache.stale) / lookups, 4) : null, feeds: db.feeds },
    skeleton: { count: skeletonCount, p50Ms: roundOrNull(quantile(skeletonMs, 0.5), 2), p99Ms: roundOrNull(quantile(skeletonMs, 0.99), 2) },
    subscribers: db.mixes.subscribers,
    mixes: db.mixes,
    posts: db.posts,
    sqlite: db.sqlite,
    retention: db.retention,
    processes: reports.map((r) => ({
      id: r.id,
      roles: r.roles,
      version: r.version,
      ageS: Math.max(0, round((now - r.at) / 1000, 1)),
      uptimeS: Math.round((now - r.startedAt) / 1000),
      rssMb: round(r.rssBytes / (1 << 20), 1),
    })),
    redis,
    samples: withNow,
  }
}

/** The configured source, as an operator would write it. */
export function sourceLabel(s: SourceSpec): string {
  return s.kind === 'replay' ? `replay:${s.path}${s.pace === 'recorded' ? '#recorded' : ''}` : `${s.kind}:${s.url}`
}

// ---------------------------------------------------------------------------
// terminal output
// ---------------------------------------------------------------------------

const fmtNum = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })

/** "3 s", "4 min", "2.5 h", "3 d". */
export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–'
  const s = Math.abs(seconds)
  const sign = seconds < 0 ? '−' : ''
  if (s < 90) return `${sign}${fmtNum(s, s < 10 ? 1 : 0)} s`
  if (s < 90 * 60) return `${sign}${fmtNum(s / 60, 0)} min`
  if (s < 48 * 3600) return `${sign}${fmtNum(s / 3600, 1)} h`
  return `${sign}${fmtNum(s / 86400, 1)} d`
}

export const fmtBytes = (b: number) =>
  b < 1 << 20 ? `${fmtNum(b / 1024, 1)} KiB` : b < 1 << 30 ? `${fmtNum(b / (1 << 20), 1)} MiB` : `${fmtNum(b / (1 << 30), 2)} GiB`

function ratesLine(r: Rates | null): string {
  if (!r) return 'no samples yet'
  const kinds = Object.entries(r.kinds)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmtNum(v, v < 10 ? 1 : 0)}`)
  return `${fmtNum(r.total, r.total < 10 ? 1 : 0)}/s${kinds.length ? ` (${kinds.join(', ')})` : ''} over ${fmtDuration(r.seconds)}`
}

function table(rows: string[][], indent = '  '): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
    )
    .join('\n')
}

/** The status as a terminal summary (what `skysift status` prints). */
export function formatStatus(s: OpsStatus): string {
  const out: string[] = []
  const line = (t = '') => out.push(t)
  line(`Skysift ${s.version} — status at ${new Date(s.at).toISOString()}`)
  line(`Redis: ${s.redis.ok ? 'ok' : `DOWN (${s.redis.error})`}    SQLite: ${s.sqlite.file} ${fmtBytes(s.sqlite.bytes)} + WAL ${fmtBytes(s.sqlite.walBytes)}`)
  line()
  line(`Ingest  source ${s.source}: ${sourceStateText(s.sourceState)}`)
  if (!s.ingest.cursors.length) line('  no cursor saved yet')
  for (const c of s.ingest.cursors) line(`  ${c.source}: cursor ${c.cursor}, lag ${fmtDuration(c.lagS)}, saved ${fmtDuration(c.savedAgoS)} ago`)
  line(`  last minute: ${ratesLine(s.ingest.rates.minute)}`)
  line(`  last hour:   ${ratesLine(s.ingest.rates.hour)}`)
  const kinds = Object.entries(s.ingest.totals.kinds)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmtNum(v)}`)
  line(`  stored: ${fmtNum(s.ingest.totals.stored)} events${kinds.length ? ` (${kinds.join(', ')})` : ''}; store lag ${fmtDuration(s.store.lagS)}`)
  if (s.ingest.process) {
    const p = s.ingest.process
    line(
      `  ingest process ${p.id}: read ${fmtNum(p.received)}, queued ${fmtNum(p.queued)}, rejected ${fmtNum(p.rejected)}, backpressure ${fmtDuration(p.pausedForBackpressureMs / 1000)}, Redis errors ${fmtNum(p.redisErrors)}`,
    )
  }
  line()
  line('Queues')
  const qrows = [['queue', 'waiting', 'active', 'delayed', 'failed', 'completed', 'workers']]
  for (const q of Object.values(QUEUE)) {
    const c = s.queues.counts[q]
    const w = s.queues.workers[q]
    qrows.push([
      q,
      ...(c ? [fmtNum(c.waiting + c.prioritized), fmtNum(c.active), fmtNum(c.delayed), fmtNum(c.failed), fmtNum(c.completed)] : ['–', '–', '–', '–', '–']),
      w === undefined || w < 0 ? '–' : String(w),
    ])
  }
  line(table(qrows))
  if (!s.queues.ok) line(`  (queues unreadable: ${s.queues.error})`)
  line()
  line('Agents')
  const arows = [['agent', 'kind', 'calls', 'posts', 'p50', 'p99', 'strikes', 'status']]
  for (const a of s.agents) {
    if (!a.calls && a.status === 'active' && !a.strikes) continue
    arows.push([
      a.id,
      a.kind,
      fmtNum(a.calls),
      fmtNum(a.posts),
      a.p50Ms === null ? '–' : `${fmtNum(a.p50Ms, 2)} ms`,
      a.p99Ms === null ? '–' : `${fmtNum(a.p99Ms, 2)} ms`,
      fmtNum(a.strikes),
      a.status === 'disabled' ? `DISABLED: ${a.reason}` : 'active',
    ])
  }
  if (arows.length === 1) line('  no agent has been called yet')
  else line(table(arows))
  line()
  const lookups = s.cache.fresh + s.cache.stale + s.cache.misses
  line(
    `Cache  hit rate ${s.cache.hitRate === null ? '–' : `${fmtNum(s.cache.hitRate * 100, 1)}%`} of ${fmtNum(lookups)} lookups (fresh ${fmtNum(s.cache.fresh)}, stale ${fmtNum(s.cache.stale)}, built on request ${fmtNum(s.cache.misses)})`,
  )
  for (const f of s.cache.feeds) {
    line(
      `  ${f.rkey}: default list ${f.defaultList ? `${fmtDuration(f.defaultList.ageS)} old, ${f.defaultList.size} items, built in ${fmtNum(f.defaultList.buildMs, 1)} ms` : 'not built yet'}; ${f.lists} lists, ${f.snapshots} snapshots`,
    )
  }
  line(
    `getFeedSkeleton  ${fmtNum(s.skeleton.count)} requests; p50 ${s.skeleton.p50Ms === null ? '–' : `${fmtNum(s.skeleton.p50Ms, 2)} ms`}, p99 ${s.skeleton.p99Ms === null ? '–' : `${fmtNum(s.skeleton.p99Ms, 2)} ms`}`,
  )
  line(
    `Subscribers  ${fmtNum(s.subscribers)}; mixes ${fmtNum(s.mixes.private)} private + ${fmtNum(s.mixes.record)} from records, ${fmtNum(s.mixes.lists)} distinct`,
  )
  line(`Posts  ${fmtNum(s.posts.count)} stored, oldest ${s.posts.oldest ? fmtDuration((s.at - s.posts.oldest) / 1000) : '–'} old`)
  const del = Object.entries(s.retention.deleted)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${fmtNum(v)}`)
  line(
    `Retention  ${s.retention.lastRunAt ? `last pass ${fmtDuration((s.at - s.retention.lastRunAt) / 1000)} ago, ${fmtNum(s.retention.runs)} passes` : 'no pass yet'}${del.length ? `; removed ${del.join(', ')}` : ''}`,
  )
  line()
  line(`Processes (${s.processes.length} reporting)`)
  for (const p of s.processes) line(`  ${p.id}  ${p.roles.join('+')}  up ${fmtDuration(p.uptimeS)}, ${p.rssMb} MB, report ${fmtDuration(p.ageS)} old`)
  return out.join('\n')
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

const roundOrNull = (n: number | null, digits: number) => (n === null ? null : round(n, digits))

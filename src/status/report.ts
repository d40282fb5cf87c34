import os from 'node:os'
import type { Redis } from 'ioredis'
import type { IngestStats, SourceState } from '../contracts/ingest.ts'
import type { Logger } from '../logger.ts'
import type { AgentHost } from '../score/host.ts'
import { withTimeout } from '../util/timeout.ts'

/**
 * Every Skysift process says, every few seconds, what only it can see: its
 * agents' call times and strikes, its ingest counters, its cache outcomes.
 * Each report is one Redis key that expires when the process is gone, so
 * `skysift status`, /admin and /metrics in any process see the whole
 * deployment (score workers on other machines included).
 */

export interface AgentReport {
  id: string
  kind: string
  calls: number
  posts: number
  strikes: number
  lastError: string | null
  /** why it is disabled in this process, or null */
  disabled: string | null
  /** recent call durations in ms */
  recentMs: number[]
}

export interface ProcessReport {
  /** host:pid */
  id: string
  host: string
  pid: number
  roles: string[]
  version: string
  startedAt: number
  at: number
  rssBytes: number
  agents: AgentReport[]
  ingest?: IngestReport
  serve?: ServeReport
}

/** The serving process's cache outcomes and getFeedSkeleton timings. */
export interface ServeReport {
  cache: { fresh: number; stale: number; misses: number }
  skeleton: { count: number; recentMs: number[] }
}

/** What a serving process keeps of its figures: it reports them on demand. */
export interface ServeFigures {
  report(): ServeReport
}

/** An ingest's counters, the name of its source and what the source is doing. */
export type IngestReport = IngestStats & { source: string; state?: SourceState }

/** What an ingest part tells its process's report and the health check. */
export interface IngestView {
  stats: IngestStats
  source: string
  state?: SourceState
}

/**
 * What a process's report reads of its context (the app context): its version and agent host, Redis, its
 * queue prefix and logger. Ingest and serving figures are attached to it by the parts that run.
 */
export interface ReportContext {
  readonly version: string
  readonly host: AgentHost
  readonly config: { readonly queuePrefix: string }
  readonly log: Logger
  redis(): Redis
}

const ingestByCtx = new WeakMap<ReportContext, () => IngestView>()

/** The ingest running in this process (set by startIngest), for the health check and the process report. */
export function attachIngest(ctx: ReportContext, view: () => IngestView): void {
  ingestByCtx.set(ctx, view)
}

/** The ingest running in this process with this context, if any. */
export function ingestOf(ctx: ReportContext): IngestView | undefined {
  return ingestByCtx.get(ctx)?.()
}

export const REPORT_TTL_S = 30

/**
 * Where every process's report is kept: one hash, a field per process (`host:pid`), so that reading them is one
 * command on one key (a SCAN for one key per process would walk only one node of a Redis Cluster). A report older
 * than REPORT_TTL_S is a process that stopped without removing its field: readers drop it.
 */
export const reportsKey = (queuePrefix: string) => `${queuePrefix}:ops:procs`

/** This process's agent figures (agents it called, or disabled here). */
export function agentReports(host: AgentHost): AgentReport[] {
  const out: AgentReport[] = []
  for (const a of host.describe()) {
    const st = host.stats.get(a.id)
    if (!st?.calls && a.status !== 'disabled') continue
    out.push({
      id: a.id,
      kind: a.kind,
      calls: st?.calls ?? 0,
      posts: st?.posts ?? 0,
      strikes: st?.strikes ?? 0,
      lastError: st?.lastError ?? null,
      disabled: a.status === 'disabled' ? (a.reason ?? 'disabled') : null,
      recentMs: (st?.recentMs ?? []).map((v) => Math.round(v * 1000) / 1000),
    })
  }
  return out
}

const serveStatsByCtx = new WeakMap<ReportContext, ServeFigures>()

/** The serving figures of a context's HTTP server (set by createServeApp), for its process report. */
export function attachServeStats(ctx: ReportContext, stats: ServeFigures): void {
  serveStatsByCtx.set(ctx, stats)
}

export function serveStatsOf(ctx: ReportContext): ServeFigures | undefined {
  return serveStatsByCtx.get(ctx)
}

const STARTED = Date.now()

/** Builds this process's report. */
export function processReport(ctx: ReportContext, roles: string[], ingest?: IngestView): ProcessReport {
  const host = os.hostname()
  return {
    id: `${host}:${process.pid}`,
    host,
    pid: process.pid,
    roles,
    version: ctx.version,
    startedAt: STARTED,
    at: Date.now(),
    rssBytes: process.memoryUsage.rss(),
    agents: agentReports(ctx.host),
    ...(ingest ? { ingest: { ...ingest.stats, source: ingest.source, ...(ingest.state ? { state: { ...ingest.state } } : {}) } } : {}),
    ...(serveStatsOf(ctx) ? { serve: serveStatsOf(ctx)!.report() } : {}),
  }
}

/**
 * Publishes this process's report every `intervalMs` until stopped (then
 * removes it). `parts` is read at every tick, so stages started later are
 * reported too.
 */
export function startProcessReport(
  ctx: ReportContext,
  roles: string[],
  ingest: () => IngestView | undefined,
  intervalMs = 10_000,
): { name: string; stop(): Promise<void> } {
  const redis = ctx.redis()
  const key = reportsKey(ctx.config.queuePrefix)
  const field = `${os.hostname()}:${process.pid}`
  let last: Promise<unknown> = Promise.resolve()
  const tick = () => {
    const report = processReport(ctx, roles, ingest())
    last = withTimeout(redis.hset(key, field, JSON.stringify(report)), 2000).catch((err) =>
      ctx.log.debug({ err: (err as Error).message }, 'process report not published'),
    )
  }
  const first = setTimeout(tick, 500)
  const timer = setInterval(tick, intervalMs)
  first.unref()
  timer.unref()
  return {
    name: 'ops',
    async stop() {
      clearTimeout(first)
      clearInterval(timer)
      await last
      await withTimeout(redis.hdel(key, field), 1000).catch(() => {})
    },
  }
}

/** Every live process's report (empty when Redis does not answer); reports of processes gone silent are removed. */
export async function readProcessReports(redis: Redis, queuePrefix: string, timeoutMs = 1500, now = Date.now()): Promise<ProcessReport[]> {
  const key = reportsKey(queuePrefix)
  const all = await withTimeout(redis.hgetall(key), timeoutMs)
  const out: ProcessReport[] = []
  const gone: string[] = []
  for (const [field, v] of Object.entries(all)) {
    let rep: ProcessReport
    try {
      rep = JSON.parse(v) as ProcessReport
    } catch {
      // a report from an incompatible version: skip
      continue
    }
    if (!(now - rep.at <= REPORT_TTL_S * 1000)) gone.push(field)
    else out.push(rep)
  }
  if (gone.length) await withTimeout(redis.hdel(key, ...gone), timeoutMs).catch(() => {})
  return out.sort((a, b) => a.id.localeCompare(b.id))
}

import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { HonoAdapter } from '@bull-board/hono'
import { serveStatic } from '@hono/node-server/serve-static'
import type { Queue } from 'bullmq'
import type { Hono, MiddlewareHandler } from 'hono'
import type { AppContext } from '../../context.ts'
import type { Logger } from '../../logger.ts'
import { producerQueue } from '../../contracts/queues.ts'
import { QUEUE, type QueueName } from '../../contracts/jobs.ts'
import { adminSessionRoutes, bearerMatches, requireAdmin } from './auth.ts'
import { XrpcError } from '../errors.ts'
import { withTimeout } from '../../util/timeout.ts'
import { labelProcessScoped } from '../processes.ts'
import { signInPage, statusPage } from './admin-page.ts'
import { OpsMetrics } from './metrics.ts'
import { attachServeStats, ingestOf, processReport, type ProcessReport } from '../../status/report.ts'
import { Sampler } from '../../status/sampler.ts'
import { ServeStats, type CacheOutcome } from './serve-stats.ts'
import { collectStatus, DbStatusReader, type OpsStatus } from '../../status/status.ts'

/** What createApp needs to mount the operations routes. */
export interface OpsRoutes {
  install(app: Hono): void
}

export interface ServeOps extends OpsRoutes {
  stats: ServeStats
  metrics: OpsMetrics
  /** the deployment's status (cached for a moment: scrapes and page views share it) */
  status(): Promise<OpsStatus>
  /** told whether a first page came from a fresh, stale or missing list */
  cacheLookup(outcome: CacheOutcome): void
  close(): Promise<void>
}

const STATUS_TTL_MS = 2000

/** Google Fonts links in a page (the queue board's asks for its typeface there). */
const OUTSIDE_FONTS = /<link\b[^>]*href="https:\/\/fonts\.(?:googleapis|gstatic)\.com[^"]*"[^>]*>\s*/g

/**
 * The queue board's page without outside requests: its Google Fonts link is
 * dropped (it falls back to system fonts), so opening it works offline and
 * tells no third party, and a content security policy keeps anything else it
 * might ask for in this origin.
 */
const selfContained: MiddlewareHandler = async (c, next) => {
  await next()
  c.header(
    'content-security-policy',
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; frame-ancestors 'none'",
  )
  if (!c.res.headers.get('content-type')?.startsWith('text/html')) return
  const body = (await c.res.text()).replace(OUTSIDE_FONTS, '')
  const headers = new Headers(c.res.headers)
  headers.delete('content-length')
  c.res = new Response(body, { status: c.res.status, headers })
}

/**
 * Operations for a serving process: `/metrics` (Prometheus), the `/admin`
 * status page with its sign-in form, `/admin/api/status` (JSON), and the
 * queue board at `/admin/queues`. Samples counters every 10 s for the
 * admin chart and for `skysift status`.
 */
export function createServeOps(ctx: AppContext, log: Logger = ctx.log.child({ sub: 'ops' })): ServeOps {
  const config = ctx.config
  const stats = new ServeStats()
  attachServeStats(ctx, stats)
  const metrics = new OpsMetrics(ctx.version)
  const redis = ctx.redis()
  const queues = Object.fromEntries(
    Object.values(QUEUE).map((name) => {
      const q = producerQueue(name, config.redisUrl, config.queuePrefix)
      q.on('error', (err) => log.debug({ queue: name, err: err.message }, 'ops queue error'))
      return [name, q]
    }),
  ) as Record<QueueName, Queue>
  const dbReader = new DbStatusReader(ctx.db.sqlite, ctx.feeds)
  const sampler = new Sampler(() => dbReader.sample(), { redis, queuePrefix: config.queuePrefix, log }).start()

  /** This process, fresh: its published report (roles, ingest) with current agent and serving figures. */
  const self = (published?: ProcessReport): ProcessReport => {
    // an ingest in this process is reported live (its source's state changes between published reports)
    const now = processReport(ctx, published?.roles ?? ['serve'], ingestOf(ctx))
    return published
      ? { ...published, at: now.at, rssBytes: now.rssBytes, agents: now.agents, serve: now.serve, ...(now.ingest ? { ingest: now.ingest } : {}) }
      : now
  }
  let cached: { at: number; value: Promise<OpsStatus> } | null = null
  const status = (): Promise<OpsStatus> => {
    const now = Date.now()
    if (cached && now - cached.at < STATUS_TTL_MS) return cached.value
    const value = collectStatus({
      db: ctx.db.sqlite,
      dbReader,
      feeds: ctx.feeds,
      host: ctx.host,
      version: ctx.version,
      source: config.source,
      queuePrefix: config.queuePrefix,
      redis,
      queues,
      self,
      samples: () => sampler.samples(),
    })
    cached = { at: now, value }
    value.catch(() => (cached = null))
    return value
  }

  const install = (app: Hono) => {
    app.use(
      '*',
      metrics.httpTiming((ms) => stats.skeleton(ms)),
    )

    app.get('/metrics', async (c) => {
      if (config.metricsToken && !bearerMatches(c.req.header('authorization'), config.metricsToken)) {
        throw new XrpcError(401, 'AuthRequired', 'metrics token required')
      }
      try {
        metrics.update(await status())
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'metrics: status not collected; serving local figures')
      }
      metrics.updateLocal(stats.cache)
      const { body, contentType } = await metrics.render()
      // @NOTE with more than one serving process on the port, any of them answers: process figures name theirs
      return c.body(config.serveProcesses > 1 ? labelProcessScoped(body) : body, 200, { 'content-type': contentType, 'cache-control': 'no-store' })
    })

    const token = config.adminToken
    if (!token) return
    app.route('/admin', adminSessionRoutes({ token, publicUrl: config.publicUrl, log, signInPage: (p) => signInPage(p) }))
    const page = requireAdmin(token, { mode: 'page', publicUrl: config.publicUrl })
    const api = requireAdmin(token, { mode: 'api', publicUrl: config.publicUrl })
    app.use('/admin/api/*', api)
    app.use('/admin/queues/api/*', api)
    app.use('/admin', page)
    app.use('/admin/*', page)
    app.get('/admin', async (c) => c.html(statusPage(await status(), { metricsPath: config.metricsToken ? null : '/metrics' })))
    app.get('/admin/api/status', async (c) => c.json(await status()))

    app.use('/admin/queues/*', selfContained)
    const board = new HonoAdapter(serveStatic)
    board.setBasePath('/admin/queues')
    createBullBoard({
      queues: Object.values(queues).map((q) => new BullMQAdapter(q)),
      serverAdapter: board,
      options: { uiConfig: { boardTitle: 'Skysift queues' } },
    })
    app.route('/admin/queues', board.registerPlugin())
  }

  return {
    stats,
    metrics,
    status,
    install,
    cacheLookup: (outcome) => stats.lookup(outcome),
    async close() {
      sampler.stop()
      await Promise.all(Object.values(queues).map((q) => withTimeout(q.close(), 2000).catch(() => {})))
    },
  }
}

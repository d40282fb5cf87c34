import type { AddressInfo } from 'node:net'
import { createAdaptorServer, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import type { AppContext } from './context.ts'
import { UsageCounter } from './feed/usage.ts'
import { Authenticator } from './serve/auth.ts'
import { createEdgeApp } from './serve/edge/edge-app.ts'
import { EdgeOutbox } from './serve/edge/edge-outbox.ts'
import { EdgeView } from './serve/edge/edge-view.ts'
import { withServedBy } from './serve/processes.ts'
import { withTimeout } from './util/timeout.ts'
import { listenError, type Running } from './runtime.ts'

/*
 * An edge node (`skysift edge`): serving that needs only Redis. It reads what a primary (a `skysift start` or
 * `skysift serve` with SKYSIFT_EDGE_PUBLISH on) publishes there (src/contracts/edge.ts), and never opens the SQLite
 * file: nothing here reaches ctx.db.
 */

/** How often the usage an edge counted goes to Redis. */
const USAGE_FLUSH_MS = 10_000

/** An edge node's app, wired to Redis (no port); start() reads the published deletions before pages are served. */
export function createEdge(ctx: AppContext): { app: Hono; view: EdgeView; outbox: EdgeOutbox; start(): Promise<void>; close(): Promise<void> } {
  const log = ctx.log.child({ sub: 'edge' })
  const redis = ctx.redis()
  const view = new EdgeView({ redis, stream: ctx.redis(), queuePrefix: ctx.config.queuePrefix, log, snapshotTtlMs: ctx.config.snapshotTtlMs })
  const outbox = new EdgeOutbox(redis, ctx.config.queuePrefix, log)
  const usage = new UsageCounter(outbox, ctx.feeds)
  const flusher = setInterval(() => usage.flush(), USAGE_FLUSH_MS)
  flusher.unref()
  const app = createEdgeApp({
    config: ctx.config,
    feeds: ctx.feeds,
    view,
    outbox,
    usage,
    auth: new Authenticator(ctx.config.serviceDid, ctx.idResolver, log, ctx.config.tokenMaxLifetimeS),
    log,
    version: ctx.version,
    ping: () => withTimeout(redis.ping(), 1000).then(() => {}),
  })
  if (!ctx.config.primaryUrl) log.warn('SKYSIFT_PRIMARY_URL is not set: requests this edge does not answer itself get a 503')
  return {
    app,
    view,
    outbox,
    start: () => view.start(),
    async close() {
      clearInterval(flusher)
      usage.flush()
      await view.stop()
      await outbox.close()
    },
  }
}

/** An edge node listening (SKYSIFT_PORT, or `listen.port`); with `listen.reusePort` other processes share the port. */
export async function startEdge(
  ctx: AppContext,
  listen: { port?: number; reusePort?: boolean } = {},
): Promise<Running & { url: string; port: number; server: ServerType; view: EdgeView }> {
  const edge = createEdge(ctx)
  await edge.start()
  const wanted = listen.port ?? ctx.config.port
  let server: ServerType
  try {
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = createAdaptorServer({ fetch: listen.reusePort ? withServedBy(edge.app.fetch) : edge.app.fetch, hostname: ctx.config.host })
      s.listen({ port: wanted, host: ctx.config.host, reusePort: listen.reusePort === true }, () => {
        s.off('error', reject)
        resolve(s)
      })
      s.once('error', reject)
    })
  } catch (err) {
    await edge.close()
    throw listenError(err as NodeJS.ErrnoException, ctx.config.host, wanted)
  }
  const port = (server.address() as AddressInfo).port
  ctx.log.info({ port, role: 'edge', primary: ctx.config.primaryUrl ?? null, feeds: ctx.feeds.map((f) => f.uri) }, 'serving')
  return {
    name: 'serve',
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    view: edge.view,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      ;(server as { closeIdleConnections?: () => void }).closeIdleConnections?.()
      await closed
      await edge.close()
    },
  }
}

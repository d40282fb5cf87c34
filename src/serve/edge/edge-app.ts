import { Hono } from 'hono'
import type { Config } from '../../config.ts'
import type { Feed } from '../../feeds.ts'
import { requestIdFor } from '../../feed/request-id.ts'
import type { UsageCounter } from '../../feed/usage.ts'
import type { Logger } from '../../logger.ts'
import type { Authenticator } from '../auth.ts'
import { errorHandler, invalidRequest, XrpcError } from '../errors.ts'
import { interestsOf } from '../interests.ts'
import { requesterOf, xrpcMethod } from '../middleware.ts'
import { describeFeedGenerator } from '../xrpc/describe-feed-generator.ts'
import { didDocument } from '../xrpc/did-document.ts'
import { nextReqId } from '../xrpc/get-feed-skeleton.ts'
import { checkInteractions, INTERACTIONS_MAX_KIB } from '../xrpc/send-interactions.ts'
import { findFeed, limitParam, param } from '../xrpc/util.ts'
import { WritesBacklogError, type EdgeOutbox } from './edge-outbox.ts'
import { EdgePages } from './edge-pages.ts'
import type { EdgeView } from './edge-view.ts'
import { proxyTo } from './proxy.ts'

/** What an edge node's HTTP app is built from. */
export interface EdgeDeps {
  config: Pick<Config, 'serviceDid' | 'publicUrl' | 'publisherDid' | 'primaryUrl' | 'cursorSecret'>
  feeds: Feed[]
  view: EdgeView
  outbox: EdgeOutbox
  usage: UsageCounter
  auth: Authenticator
  log: Logger
  version: string
  /** answers when Redis does (the health check) */
  ping(): Promise<void>
}

/** The feeds file as findFeed and describeFeedGenerator ask for it. */
class FeedList {
  readonly feeds: Feed[]
  private readonly byUri: Map<string, Feed>
  private readonly index: Map<Feed, number>
  constructor(feeds: Feed[]) {
    this.feeds = feeds
    this.byUri = new Map(feeds.map((f) => [f.uri, f]))
    this.index = new Map(feeds.map((f, i) => [f, i]))
  }
  feed(uri: string): Feed | undefined {
    return this.byUri.get(uri)
  }
  feedByRkey(rkey: string): Feed | undefined {
    return this.feeds.find((f) => f.rkey === rkey)
  }
  indexOf(feed: Feed): number {
    return this.index.get(feed) ?? -1
  }
}

const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const INTERACTIONS = 'app.bsky.feed.sendInteractions'
/** How long ago the primary may have said it was alive for the health check to call it up. */
const PRIMARY_ALIVE_MS = 5000

/** This process's resident memory and V8 heap in use, in MB. */
function memoryMb(): { rss: number; heapUsed: number } {
  const m = process.memoryUsage()
  return { rss: Math.round(m.rss / 2 ** 20), heapUsed: Math.round(m.heapUsed / 2 ** 20) }
}

/**
 * The `iss` of a bearer token, unverified (the primary verified it): only used to forget what is cached of that
 * reader, which a forged token can at most make read again.
 */
function issuerOf(authorization: string | undefined): string | null {
  const m = authorization && /^Bearer\s+[^.\s]+\.([^.\s]+)\./i.exec(authorization)
  if (!m || m[1].length > 4096) return null
  try {
    const iss = (JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8')) as { iss?: unknown }).iss
    return typeof iss === 'string' && iss.length < 2048 ? iss.split('#')[0] : null
  } catch {
    return null
  }
}

/**
 * An edge node's app: getFeedSkeleton from what the primary published to Redis, describeFeedGenerator and the DID
 * document as the primary answers them, sendInteractions checked here and queued for the primary, its own health;
 * every other request passed on to the primary (SKYSIFT_PRIMARY_URL).
 */
export function createEdgeApp(d: EdgeDeps): Hono {
  const app = new Hono()
  const feeds = new FeedList(d.feeds)
  const pages = new EdgePages(d.view, { cursorSecret: d.config.cursorSecret })
  const look = { config: d.config, feeds }
  app.onError(errorHandler(d.log))
  didDocument(app, { config: d.config })
  describeFeedGenerator(app, { config: d.config, feeds })

  app.get(`/xrpc/${SKELETON}`, async (c) => {
    const feed = findFeed(look, param(c, 'feed', true))
    const limit = limitParam(c)
    const cursor = param(c, 'cursor')
    if (cursor !== undefined && cursor.length > 200) throw invalidRequest('Error: malformed cursor')
    const who = await requesterOf(d, c, SKELETON)
    const reqId = requestIdFor(nextReqId(), feeds.indexOf(feed))
    // @NOTE the interests an app forwards count for signed-in readers only, as on the primary
    const page = await pages.skeleton(feed, who.did, limit, cursor, (f, did) => d.outbox.touch(f.uri, did, did ? interestsOf((h) => c.req.header(h)) : []))
    d.usage.served(page.contexts)
    d.log.debug({ reqId, feed: feed.rkey, viewer: who.did, anon: who.reason, n: page.contexts.length }, 'feed skeleton')
    return c.body(
      `{"feed":${page.feedJson}${page.cursor === undefined ? '' : `,"cursor":${JSON.stringify(page.cursor)}`},"reqId":${JSON.stringify(reqId)}}`,
      200,
      {
        'content-type': 'application/json',
      },
    )
  })

  app.post(`/xrpc/${INTERACTIONS}`, xrpcMethod(d, { nsid: INTERACTIONS, auth: 'required', input: { maxKiB: INTERACTIONS_MAX_KIB } }), async (c) => {
    const who = c.var.viewer
    const input = c.var.input
    await checkInteractions(input)
    try {
      await d.outbox.write('interactions', who, input)
    } catch (err) {
      if (err instanceof WritesBacklogError) throw new XrpcError(503, 'NotReady', err.message)
      d.log.warn({ err: (err as Error).message }, 'interactions not queued')
      throw new XrpcError(503, 'NotReady', 'interactions cannot be queued for the primary right now; try again in a moment')
    }
    d.log.debug({ viewer: who }, 'interactions queued')
    return c.json({})
  })

  app.get('/xrpc/_health', async (c) => {
    const checks: Record<string, string> = {}
    let ok = true
    try {
      await d.ping()
      checks.redis = 'ok'
    } catch (err) {
      ok = false
      checks.redis = (err as Error).message || 'failed'
    }
    const primary = ok ? await d.view.primary() : { beatAt: 0, epoch: '' }
    const ageMs = primary.beatAt ? Math.max(0, Date.now() - primary.beatAt) : null
    // @NOTE an edge is healthy while Redis answers: it serves what the primary published even while the primary is down
    return c.json(
      {
        version: d.version,
        ok,
        serving: ok && d.view.caughtUp,
        role: 'edge',
        primary: {
          publishing: ageMs !== null && ageMs < PRIMARY_ALIVE_MS,
          lastSeenMsAgo: ageMs,
          epoch: primary.epoch || null,
          proxyTo: d.config.primaryUrl ?? null,
        },
        cache: d.view.figures(),
        memory: memoryMb(),
        writesBacklog: await d.outbox.writesBacklog(),
        checks,
      },
      ok ? 200 : 503,
    )
  })

  const proxy = proxyTo(d.config.primaryUrl, d.log)
  app.all('*', async (c) => {
    const res = await proxy(c)
    // @NOTE a write the primary took (a mix saved, say) may move the writer's placement, which the primary publishes
    // before it answers: the next first page here reads it again rather than the one read up to a second ago
    if (res.ok && c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const did = issuerOf(c.req.header('authorization'))
      if (did) d.view.forgetReader(did)
    }
    return res
  })
  return app
}

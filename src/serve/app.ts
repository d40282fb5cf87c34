import { randomBytes } from 'node:crypto'
import type { Lexicons } from '@atproto/lexicon'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Config } from '../config.ts'
import type { Feed } from '../feeds.ts'
import { parseAtUri } from '../ingest/events.ts'
import type { Logger } from '../logger.ts'
import { BadCursorError, type FeedService } from '../rank/feed-service.ts'
import { FieldError } from '../score/host.ts'
import type { Authenticator } from './auth.ts'
import { authRequired, errorHandler, invalidRequest, XrpcError } from './errors.ts'
import { landingPage } from './pages.ts'

export interface HealthCheck {
  name: string
  check(): Promise<void> | void
}

export interface AppDeps {
  config: Pick<Config, 'serviceDid' | 'publicUrl' | 'publisherDid'>
  feeds: FeedService
  auth: Authenticator
  lexicons: Lexicons
  log: Logger
  version: string
  health: HealthCheck[]
}

const NSID = {
  describe: 'app.bsky.feed.describeFeedGenerator',
  skeleton: 'app.bsky.feed.getFeedSkeleton',
  getMix: 'app.skysift.feed.getMix',
  putMix: 'app.skysift.feed.putMix',
} as const

/** A single query parameter; repeated or missing-but-required parameters are a 400. */
function param(c: Context, name: string, required: true): string
function param(c: Context, name: string, required?: false): string | undefined
function param(c: Context, name: string, required = false): string | undefined {
  const all = c.req.queries(name)
  if (!all || all.length === 0) {
    if (required) throw invalidRequest(`Error: Params must have the property "${name}"`)
    return undefined
  }
  if (all.length > 1) throw invalidRequest(`Error: Params property "${name}" must be given once`)
  return all[0]
}

function limitParam(c: Context): number {
  const raw = param(c, 'limit')
  if (raw === undefined) return 50
  if (!/^\d{1,4}$/.test(raw)) throw invalidRequest('Error: limit must be an integer')
  const n = Number(raw)
  if (n < 1 || n > 100) throw invalidRequest('Error: limit must be between 1 and 100')
  return n
}

/** The Hono app: feed-generator XRPC, Skysift's mix methods, health, and the landing page. */
export function createApp(d: AppDeps): Hono {
  const app = new Hono()
  const { config, log } = d
  app.onError(errorHandler(log))
  app.notFound((c) => c.json({ error: 'MethodNotImplemented', message: 'Method Not Implemented' }, 404))

  const findFeed = (uri: string): Feed => {
    const parts = parseAtUri(uri)
    if (!parts) throw invalidRequest('Error: feed must be a valid at-uri')
    const feed = d.feeds.feed(uri) ?? (config.publisherDid ? undefined : parts.collection === 'app.bsky.feed.generator' ? d.feeds.feedByRkey(parts.rkey) : undefined)
    if (!feed) throw new XrpcError(400, 'UnknownFeed', 'Unknown feed')
    return feed
  }

  /** The subscriber calling a private method: a verified token is required. */
  const subscriber = async (c: Context, lxm: string): Promise<string> => {
    const header = c.req.header('authorization')
    if (!header) throw authRequired('Authentication Required')
    try {
      return await d.auth.verify(header, lxm)
    } catch (err) {
      throw new XrpcError(401, (err as { error?: string }).error ?? 'InvalidToken', (err as Error).message)
    }
  }

  app.get('/', (c) => c.html(landingPage({ feeds: d.feeds.feeds, serviceDid: config.serviceDid, version: d.version })))

  app.get('/.well-known/did.json', (c) => {
    if (!config.serviceDid.startsWith('did:web:')) return c.json({ error: 'NotFound', message: 'this service uses a did:plc' }, 404)
    return c.json({
      '@context': ['https://www.w3.org/ns/did/v1'],
      id: config.serviceDid,
      service: [{ id: '#bsky_fg', type: 'BskyFeedGenerator', serviceEndpoint: config.publicUrl }],
    })
  })

  app.get(`/xrpc/${NSID.describe}`, (c) =>
    c.json({
      did: config.serviceDid,
      feeds: d.feeds.feeds.map((f) => ({ uri: f.uri })),
      links: { privacyPolicy: `${config.publicUrl}/#privacy`, termsOfService: `${config.publicUrl}/#terms` },
    }),
  )

  app.get(`/xrpc/${NSID.skeleton}`, async (c) => {
    const feed = findFeed(param(c, 'feed', true))
    const limit = limitParam(c)
    const cursor = param(c, 'cursor')
    if (cursor !== undefined && cursor.length > 200) throw invalidRequest('Error: malformed cursor')
    const who = await d.auth.optional(c.req.header('authorization'), NSID.skeleton)
    const reqId = randomBytes(8).toString('hex')
    try {
      const page = d.feeds.skeleton(feed, who.did, limit, cursor)
      log.debug({ reqId, feed: feed.rkey, viewer: who.did, anon: who.reason, n: page.feed.length }, 'feed skeleton')
      return c.json({ ...page, reqId })
    } catch (err) {
      if (err instanceof BadCursorError) throw invalidRequest(`Error: ${err.message}`)
      throw err
    }
  })

  app.get(`/xrpc/${NSID.getMix}`, async (c) => {
    const who = await subscriber(c, NSID.getMix)
    const feed = findFeed(param(c, 'feed', true))
    const v = d.feeds.viewMix(feed, who)
    const body = { feed: v.feed, agents: v.agents, source: v.source, fingerprint: v.fingerprint, ...(v.updatedAt ? { updatedAt: new Date(v.updatedAt).toISOString() } : {}) }
    return c.json(body)
  })

  app.post(`/xrpc/${NSID.putMix}`, bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json({ error: 'PayloadTooLarge', message: 'request body over 64 KiB' }, 413) }), async (c) => {
    const who = await subscriber(c, NSID.putMix)
    let input: unknown
    try {
      input = await c.req.json()
    } catch {
      throw invalidRequest('Error: body is not JSON')
    }
    try {
      d.lexicons.assertValidXrpcInput(NSID.putMix, input)
    } catch (err) {
      // a problem inside an entry is a bad mix: name the field as the mix checks do (agents.1.weight)
      const msg = (err as Error).message
      const m = /^Input\/(agents\/\S*) (.*)$/.exec(msg)
      throw m ? new XrpcError(400, 'InvalidMix', `${m[1].replace(/\//g, '.')}: ${m[2]}`) : invalidRequest(msg)
    }
    const { feed: feedUri, agents } = input as { feed: string; agents: unknown }
    const feed = findFeed(feedUri)
    try {
      const v = await d.feeds.putMix(feed, who, agents)
      return c.json({ feed: v.feed, agents: v.agents, fingerprint: v.fingerprint })
    } catch (err) {
      if (err instanceof FieldError) throw new XrpcError(400, 'InvalidMix', err.message)
      throw err
    }
  })

  app.get('/xrpc/_health', async (c) => {
    const checks: Record<string, string> = {}
    let ok = true
    for (const h of d.health) {
      try {
        await h.check()
        checks[h.name] = 'ok'
      } catch (err) {
        ok = false
        checks[h.name] = (err as Error).message || 'failed'
      }
    }
    return c.json({ version: d.version, ok, checks }, ok ? 200 : 503)
  })

  return app
}

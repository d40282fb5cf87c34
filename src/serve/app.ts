import { randomBytes } from 'node:crypto'
import type { Lexicons } from '@atproto/lexicon'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Config } from '../config.ts'
import type { Feed } from '../feeds.ts'
import { parseAtUri } from '../ingest/events.ts'
import type { Logger } from '../logger.ts'
import { lexicons as bskyLexicons } from '@atproto/api'
import { BadCursorError, type FeedService, type MixView } from '../rank/feed-service.ts'
import { interestsOf } from '../rank/interests.ts'
import { storedEvent } from '../store/interactions.ts'
import { FieldError } from '../score/host.ts'
import { RateBudget } from '../util/rate-budget.ts'
import { requestIdFor } from '../feed/request-id.ts'
import { QueueFullError, WorkQueue, yieldToLoop } from '../util/work-queue.ts'
import type { Authenticator } from './auth.ts'
import { authRequired, errorHandler, invalidRequest, XrpcError } from './errors.ts'
import { adminAgentRoutes, requireAdmin, type AdminAgentDeps } from './admin.ts'
import type { UsageCounter } from '../rank/usage.ts'
import type { OpsRoutes } from '../ops/serve-ops.ts'
import type { IngestHealth } from '../ops/status.ts'

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
  /** how the ingest is doing, for the health check (it does not decide `ok`) */
  ingest?: () => Promise<IngestHealth>
  agents: AdminAgentDeps & { usage: UsageCounter }
  adminToken?: string
  /** operations routes (/metrics, /admin pages, request timing), installed before every other route */
  ops?: OpsRoutes
  /** subscriber web pages (src/serve/web), mounted at the root */
  web?: Hono
  /** the page a browser gets for an unknown path outside /xrpc */
  notFoundPage?: (c: Context) => Response | Promise<Response>
  /** agent submissions per author and in all per hour (attempts, whatever their outcome) */
  submitLimits?: { perAuthorPerHour: number; perHour: number }
  /** the budget submissions are counted against (shared by serving processes); without it, one of this process's own */
  submitBudget?: { take(key: string): ReturnType<RateBudget['take']> | Promise<ReturnType<RateBudget['take']>> }
}

/** Defaults of SKYSIFT_SUBMIT_PER_AUTHOR_H and SKYSIFT_SUBMIT_PER_H. */
export const SUBMIT_DEFAULTS = { perAuthorPerHour: 5, perHour: 30 }

/** Request ids: 16 hex digits, a random per-process prefix and a counter (randomBytes per request cost 5% of serving). */
const REQ_PREFIX = randomBytes(4).toString('hex')
let reqSeq = 0
const nextReqId = () => REQ_PREFIX + ((reqSeq = (reqSeq + 1) >>> 0).toString(16).padStart(8, '0'))

const NSID = {
  describe: 'app.bsky.feed.describeFeedGenerator',
  skeleton: 'app.bsky.feed.getFeedSkeleton',
  getMix: 'app.skysift.feed.getMix',
  putMix: 'app.skysift.feed.putMix',
  deleteMix: 'app.skysift.feed.deleteMix',
  listMixes: 'app.skysift.feed.listMixes',
  previewMix: 'app.skysift.feed.previewMix',
  explainItem: 'app.skysift.feed.explainItem',
  listFeedback: 'app.skysift.feed.listFeedback',
  undoFeedback: 'app.skysift.feed.undoFeedback',
  sendInteractions: 'app.bsky.feed.sendInteractions',
  listAgents: 'app.skysift.agent.listAgents',
  submitAgent: 'app.skysift.agent.submitAgent',
} as const

const MAX_PENDING_PER_AUTHOR = 5
/** interactions of one sendInteractions request checked or stored between two turns of the event loop */
const INTERACTIONS_CHUNK = 50

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

const LIMIT_RANGE = 'Error: limit must be an integer from 1 to 100'

function limitParam(c: Context): number {
  const raw = param(c, 'limit')
  if (raw === undefined) return 50
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN
  if (!(n >= 1 && n <= 100)) throw invalidRequest(LIMIT_RANGE)
  return n
}

/** The Hono app: feed-generator XRPC, Skysift's mix methods, health, and the landing page. */
export function createApp(d: AppDeps): Hono {
  const app = new Hono()
  const { config, log } = d
  const submitLimits = d.submitLimits ?? SUBMIT_DEFAULTS
  const submissions = d.submitBudget ?? new RateBudget({ perKey: submitLimits.perAuthorPerHour, total: submitLimits.perHour, windowMs: 3_600_000 })
  // @NOTE a submission loads the agent in a sandbox worker thread to read its metadata: one at a time, a few waiting
  const submitting = new WorkQueue(2)
  app.onError(errorHandler(log))
  app.notFound((c) => {
    // XRPC clients get XRPC errors; a browser gets a page
    if (c.req.path.startsWith('/xrpc/')) return c.json({ error: 'MethodNotImplemented', message: 'Method Not Implemented' }, 404)
    if (d.notFoundPage && c.req.header('accept')?.includes('text/html')) return d.notFoundPage(c)
    return c.json({ error: 'NotFound', message: 'Not Found' }, 404)
  })
  d.ops?.install(app)

  const findFeed = (uri: string): Feed => {
    const parts = parseAtUri(uri)
    if (!parts) throw invalidRequest('Error: feed must be a valid at-uri')
    const feed = d.feeds.feed(uri) ?? (config.publisherDid ? undefined : parts.collection === 'app.bsky.feed.generator' ? d.feeds.feedByRkey(parts.rkey) : undefined)
    if (!feed) throw new XrpcError(400, 'UnknownFeed', 'Unknown feed')
    return feed
  }

  const smallBody = bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json({ error: 'PayloadTooLarge', message: 'request body over 64 KiB' }, 413) })

  /** A JSON body validated against one of our lexicons; a 400 naming the problem otherwise. */
  const jsonInput = async (c: Context, nsid: string): Promise<unknown> => {
    let input: unknown
    try {
      input = await c.req.json()
    } catch {
      throw invalidRequest('Error: body is not JSON')
    }
    try {
      d.lexicons.assertValidXrpcInput(nsid, input)
    } catch (err) {
      throw invalidRequest((err as Error).message)
    }
    return input
  }

  const mixView = (v: MixView) => ({
    feed: v.feed,
    agents: v.agents,
    source: v.source,
    fingerprint: v.fingerprint,
    ...(v.updatedAt ? { updatedAt: new Date(v.updatedAt).toISOString() } : {}),
    nudges: v.nudges,
  })

  /** The subscriber calling a private method: a verified token is required. */
  const subscriber = async (c: Context, lxm: string): Promise<string> => {
    const header = c.req.header('authorization')
    if (!header) throw authRequired('Authentication Required')
    try {
      return await d.auth.verify(header, lxm)
    } catch (err) {
      const name = (err as { error?: string }).error
      if (name) throw new XrpcError(401, name, (err as Error).message)
      // @NOTE a token that does not parse makes the JWT library throw its parser's error: say what is wrong instead
      log.debug({ lxm, err: (err as Error).message }, 'unreadable bearer token')
      throw new XrpcError(401, 'BadJwt', 'the bearer token is not a well-formed service-auth JWT')
    }
  }

  if (d.web) app.route('/', d.web)

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
    const reqId = requestIdFor(nextReqId(), d.feeds.feeds.indexOf(feed))
    try {
      // @NOTE the interests an app forwards count for signed-in readers only (see docs): a stranger's header builds no list
      const page = d.feeds.skeleton(feed, who.did, limit, cursor, who.did ? interestsOf((h) => c.req.header(h)) : [])
      d.feeds.noteRequest(reqId, feed)
      log.debug({ reqId, feed: feed.rkey, viewer: who.did, anon: who.reason, n: page.feed.length }, 'feed skeleton')
      return c.body(d.feeds.skeletonJson(page, reqId), 200, { 'content-type': 'application/json' })
    } catch (err) {
      if (err instanceof BadCursorError) throw invalidRequest(`Error: ${err.message}`)
      throw err
    }
  })

  app.get(`/xrpc/${NSID.getMix}`, async (c) => {
    const who = await subscriber(c, NSID.getMix)
    const feed = findFeed(param(c, 'feed', true))
    return c.json(mixView(d.feeds.viewMix(feed, who)))
  })

  app.get(`/xrpc/${NSID.listMixes}`, async (c) => {
    const who = await subscriber(c, NSID.listMixes)
    return c.json({ mixes: d.feeds.listMixes(who).map(mixView) })
  })

  app.post(`/xrpc/${NSID.deleteMix}`, smallBody, async (c) => {
    const who = await subscriber(c, NSID.deleteMix)
    const input = await jsonInput(c, NSID.deleteMix)
    const feed = findFeed((input as { feed: string }).feed)
    return c.json({ deleted: d.feeds.deleteMix(feed, who) })
  })

  app.post(`/xrpc/${NSID.previewMix}`, smallBody, async (c) => {
    const who = await d.auth.optional(c.req.header('authorization'), NSID.previewMix)
    const input = (await jsonInput(c, NSID.previewMix)) as { feed: string; agents: unknown; limit?: number }
    const feed = findFeed(input.feed)
    try {
      return c.json(await d.feeds.previewMix(feed, who.did, input.agents, input.limit ?? 30))
    } catch (err) {
      if (err instanceof FieldError) throw new XrpcError(400, 'InvalidMix', err.message)
      if (err instanceof QueueFullError) throw new XrpcError(429, 'RateLimitExceeded', 'too many previews are waiting; try again in a moment')
      throw err
    }
  })

  app.get(`/xrpc/${NSID.explainItem}`, async (c) => {
    const feedContext = param(c, 'feedContext', true)
    // @NOTE a private mix is explained only to its reader: the token (optional) says who asks
    const who = await d.auth.optional(c.req.header('authorization'), NSID.explainItem)
    const e = d.feeds.explain(feedContext, who.did)
    if (!e) throw new XrpcError(400, 'UnknownContext', 'not a feedContext this server made for you')
    return c.json({ reasons: e.reasons.map((r) => ({ agent: r.agent, label: r.label, title: r.title, value: r.value, ...(r.detail ? { detail: r.detail } : {}) })), text: e.text })
  })

  app.get(`/xrpc/${NSID.listFeedback}`, async (c) => {
    const who = await subscriber(c, NSID.listFeedback)
    const feed = findFeed(param(c, 'feed', true))
    const raw = param(c, 'limit')
    const limit = raw === undefined ? 50 : Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidRequest(LIMIT_RANGE)
    const feedback = d.feeds.feedback(feed, who, limit).map((f) => ({
      id: f.id,
      event: f.event,
      post: f.postUri,
      createdAt: new Date(f.at).toISOString(),
      undone: f.undone,
      nudges: f.nudges.map((n) => ({ agent: n.label, delta: n.delta })),
    }))
    return c.json({ feedback })
  })

  app.post(`/xrpc/${NSID.undoFeedback}`, smallBody, async (c) => {
    const who = await subscriber(c, NSID.undoFeedback)
    const input = (await jsonInput(c, NSID.undoFeedback)) as { id: number }
    return c.json({ undone: d.feeds.undoFeedback(who, input.id) !== null })
  })

  app.post(`/xrpc/${NSID.sendInteractions}`, bodyLimit({ maxSize: 256 * 1024, onError: (c) => c.json({ error: 'PayloadTooLarge', message: 'request body over 256 KiB' }, 413) }), async (c) => {
    const who = await subscriber(c, NSID.sendInteractions)
    const input = await c.req.json().catch(() => {
      throw invalidRequest('Error: body is not JSON')
    })
    // @NOTE a large batch is checked and stored a chunk at a time, letting other requests in between: a page of
    // 1,000 interactions otherwise holds the event loop for as long as it takes to check them all
    const all = (input as { interactions?: unknown }).interactions
    const list = Array.isArray(all) ? all : []
    for (let at = 0; at === 0 || at < list.length; at += INTERACTIONS_CHUNK) {
      if (at > 0) await yieldToLoop()
      try {
        bskyLexicons.assertValidXrpcInput(NSID.sendInteractions, at === 0 && !Array.isArray(all) ? input : { ...(input as object), interactions: list.slice(at, at + INTERACTIONS_CHUNK) })
      } catch (err) {
        throw invalidRequest((err as Error).message.replace(/^Input\/interactions\/(\d+)/, (_, i: string) => `Input/interactions/${at + Number(i)}`))
      }
    }
    const body = input as { feed?: string }
    const items = (list as { item?: string; event?: string; feedContext?: string; reqId?: string }[]).flatMap((i) => {
      if (!i.event || !i.item || !parseAtUri(i.item)) return []
      return [{ postUri: i.item, event: storedEvent(i.event), feedContext: i.feedContext ?? null, reqId: i.reqId ?? null }]
    })
    let stored = 0
    for (let at = 0; at < items.length; at += INTERACTIONS_CHUNK) {
      if (at > 0) await yieldToLoop()
      stored += d.feeds.addFeedback(who, items.slice(at, at + INTERACTIONS_CHUNK), body.feed)
    }
    log.debug({ viewer: who, received: items.length, stored }, 'interactions')
    return c.json({})
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

  app.get(`/xrpc/${NSID.listAgents}`, (c) => {
    const usage = d.agents.usage.all()
    const agents = d.agents.host.describe().map((a) => ({
      id: a.id,
      version: a.version,
      title: a.title,
      description: a.description,
      ...(a.author ? { author: a.author } : {}),
      kind: a.kind,
      options: a.options,
      needs: a.needs,
      status: a.status,
      ...(a.reason ? { statusReason: a.reason } : {}),
      usage: usage.get(a.id) ?? { mixes: 0, feedDefaults: 0, itemsShaped: 0 },
    }))
    return c.json({ agents })
  })

  app.post(`/xrpc/${NSID.submitAgent}`, bodyLimit({ maxSize: 300 * 1024, onError: (c) => c.json({ error: 'PayloadTooLarge', message: 'request body over 300 KiB' }, 413) }), async (c) => {
    const who = await subscriber(c, NSID.submitAgent)
    const input = await c.req.json().catch(() => null)
    try {
      d.lexicons.assertValidXrpcInput(NSID.submitAgent, input)
    } catch (err) {
      throw invalidRequest((err as Error).message)
    }
    const pending = d.agents.store.list().filter((a) => a.submittedBy === who && a.status === 'pending')
    if (pending.length >= MAX_PENDING_PER_AUTHOR) throw new XrpcError(429, 'TooManyPending', `at most ${MAX_PENDING_PER_AUTHOR} agents may wait for review per author`)
    const spent = await submissions.take(who)
    if (spent) {
      log.info({ author: who, scope: spent.scope }, 'agent submission refused: budget spent')
      c.header('retry-after', String(spent.retryAfterS))
      const msg = spent.scope === 'key' ? `at most ${submitLimits.perAuthorPerHour} submissions per author per hour` : `at most ${submitLimits.perHour} submissions per hour are taken`
      throw new XrpcError(429, 'RateLimitExceeded', `${msg}; try again in ${spent.retryAfterS} s`)
    }
    let rec
    try {
      rec = await submitting.run(() => d.agents.store.submitSandboxed((input as { source: string }).source, who))
    } catch (err) {
      if (err instanceof QueueFullError) throw new XrpcError(429, 'RateLimitExceeded', 'too many submissions are being checked; try again in a moment')
      throw new XrpcError(400, 'InvalidAgent', (err as Error).message)
    }
    log.info({ agent: rec.id, author: who }, 'agent submitted for review')
    return c.json({ id: rec.id, version: rec.meta.version, status: rec.status })
  })

  if (d.adminToken) {
    app.use('/admin/api/*', requireAdmin(d.adminToken, { publicUrl: config.publicUrl }))
    app.route('/admin/api/agents', adminAgentRoutes(d.agents))
  }

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
    // @NOTE a node that serves is healthy even when its source is unreachable: it still serves what it has, and a load
    // balancer that took it out would serve nothing at all. `ingesting` says whether new events are coming in.
    const ingest = d.ingest ? await d.ingest().catch(() => null) : null
    return c.json({ version: d.version, ok, serving: ok, ...(ingest ? { ingesting: ingest.ingesting, ingest } : {}), checks }, ok ? 200 : 503)
  })

  return app
}

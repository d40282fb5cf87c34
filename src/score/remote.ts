import { createHmac } from 'node:crypto'
import { z } from 'zod'
import { assertUrlAllowed, checkUrlStatic, createGuardedFetch, readCapped, SsrfError, type GuardOptions, type Resolver } from './guarded-fetch.ts'
import { agentMetaSchema, checkOptionsSchema, MAX_OPTIONS_SCHEMA_BYTES, type DeclaredAgentMeta } from './agent-meta.ts'
import { checkScores } from './scores.ts'
import { SDK_API_VERSION, type AgentContext, type AgentPost, type AsyncAgentDefinition, type Need, type Score } from './sdk.ts'

/**
 * Remote agents: an author runs an HTTP endpoint, Skysift POSTs batches of
 * posts to it and gets one score per post back. The wire format is
 * `skysift-remote-agent/1`, described in docs/remote-agents.md.
 *
 * Everything that can go wrong on the far side (timeouts, HTTP errors,
 * oversized or malformed answers, wrong lengths) turns into "no opinion"
 * (null) for the affected posts and a counted failure; enough failures in a
 * row open a circuit breaker so a dead endpoint costs nothing. Connections
 * only go to public addresses unless the admin allows private ones, and the
 * check is made on the address actually connected to.
 */

export const REMOTE_PROTOCOL = 'skysift-remote-agent/1'

export interface RemoteAgentConfig {
  /** base URL; the host calls `<url>/meta` and `<url>/score` */
  url: string
  /** per-agent secret that DIDs are hashed with (keep it stable: changing it changes every hash) */
  salt: string
  /** send author DIDs (and DIDs in URIs) as they are instead of hashed; an admin grant */
  rawDids?: boolean
  /** deadline per /score request, ms (default 500) */
  deadlineMs?: number
  /** largest response body accepted, bytes (default 256 KiB) */
  maxResponseBytes?: number
  /** posts per /score request, 1..100 (default 100) */
  batchSize?: number
  /** allow loopback, private, link-local and other non-public addresses (default false) */
  allowPrivateNetwork?: boolean
  breaker?: {
    /** consecutive failed requests that open the circuit (default 5) */
    failures: number
    /** how long the circuit stays open before one trial request, ms (default 30000) */
    cooldownMs: number
  }
  /**
   * Resolves a host name to addresses (default: the system resolver via
   * `dns.lookup`). Every address it returns is checked, and the connection
   * goes to one of those addresses. Mainly for tests.
   */
  resolve?: Resolver
}

/** What the breaker and transport have seen; returned by `remoteStats()`. */
export interface RemoteStats {
  /** scoreBatchAsync calls */
  calls: number
  /** /score requests actually sent */
  requests: number
  /** requests that failed (timeouts included) */
  failures: number
  timeouts: number
  /** chunks answered with no opinion, without a request, because the circuit was open */
  skipped: number
  consecutiveFailures: number
  /** true while the circuit is open or a half-open trial is in flight */
  open: boolean
  state: 'closed' | 'open' | 'half-open'
  lastError: string | null
}

/** A loaded remote agent: an async agent definition plus its transport's state. */
// biome-ignore lint/suspicious/noExplicitAny: an agent's options are its own shape; hosts hold agents of every option type side by side
export interface RemoteAgentDefinition<O = any> extends AsyncAgentDefinition<O> {
  kind: 'remote'
  /** the base URL it was loaded from */
  url: string
  remoteStats(): RemoteStats
  /** closes pooled keep-alive connections */
  close(): void
}

const DEFAULTS = {
  deadlineMs: 500,
  maxResponseBytes: 256 * 1024,
  batchSize: 100,
  failures: 5,
  cooldownMs: 30_000,
}
/** hard cap on posts per request, whatever the config says (`candidates` agents excepted) */
export const MAX_POSTS_PER_REQUEST = 100
/** /meta gets more time than /score: it is fetched once, at load */
const META_TIMEOUT_MS = 5_000
const USER_AGENT = `skysift (${REMOTE_PROTOCOL})`

// ---------------------------------------------------------------------------
// DID hashing

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

function base32(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let acc = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31]
  return out
}

/**
 * The pseudonym a remote agent sees for a DID: `h:` + the first 120 bits of
 * HMAC-SHA256(salt, did) in lower-case base32 (24 characters).
 */
export function hashDid(salt: string, did: string): string {
  const mac = createHmac('sha256', salt).update(did).digest()
  return `h:${base32(mac.subarray(0, 15))}`
}

/** Replaces the DID authority of an at-uri with its pseudonym; other strings pass through. */
export function hashUriDid(salt: string, uri: string): string {
  if (!uri.startsWith('at://did:')) return uri
  const slash = uri.indexOf('/', 5)
  const did = slash < 0 ? uri.slice(5) : uri.slice(5, slash)
  return `at://${hashDid(salt, did)}${slash < 0 ? '' : uri.slice(slash)}`
}

/** A post as it goes on the wire: only uri, createdAt and the declared needs. */
export type WirePost = Partial<AgentPost> & Pick<AgentPost, 'uri' | 'createdAt'>

/** Builds the wire form of a post for an agent with these needs. */
export function toWirePost(p: AgentPost, needs: ReadonlySet<Need>, salt: string, rawDids: boolean): WirePost {
  const did = rawDids ? (d: string) => d : (d: string) => hashDid(salt, d)
  const uri = rawDids ? (u: string) => u : (u: string) => hashUriDid(salt, u)
  const w: WirePost = { uri: uri(p.uri), createdAt: p.createdAt }
  if (needs.has('author')) w.author = did(p.author)
  if (needs.has('text')) w.text = p.text
  if (needs.has('langs')) w.langs = p.langs
  if (needs.has('tags')) w.tags = p.tags
  if (needs.has('labels')) w.labels = p.labels
  if (needs.has('embed')) {
    w.embed = p.embed
    w.quote = p.quote === null ? null : uri(p.quote)
  }
  if (needs.has('reply')) {
    w.replyRoot = p.replyRoot === null ? null : uri(p.replyRoot)
    w.replyParent = p.replyParent === null ? null : uri(p.replyParent)
  }
  if (needs.has('engagement')) {
    w.likeCount = p.likeCount
    w.repostCount = p.repostCount
  }
  return w
}

const errText = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 500)

/** "HTTP 503: message" with the remote's own error message, if it sent one. */
async function httpError(res: Response, signal: AbortSignal): Promise<string> {
  let detail = ''
  try {
    const text = await readCapped(res, 4096, signal)
    const j = JSON.parse(text) as { error?: unknown; message?: unknown }
    const parts = [j.error, j.message].filter((x) => typeof x === 'string')
    if (parts.length) detail = `: ${parts.join(': ').slice(0, 300)}`
  } catch {
    await res.body?.cancel().catch(() => {})
  }
  return `HTTP ${res.status}${detail}`
}

// ---------------------------------------------------------------------------
// /meta validation

/** JSON Schema for options → zod; throws naming what is wrong. */
export function optionsFromJsonSchema(schema: Record<string, unknown> | undefined): z.ZodType {
  const s = schema ?? { type: 'object', properties: {} }
  if (JSON.stringify(s).length > MAX_OPTIONS_SCHEMA_BYTES) throw new Error(`options schema is larger than ${MAX_OPTIONS_SCHEMA_BYTES} bytes`)
  if (s.type !== 'object') throw new Error('options schema must have "type": "object"')
  checkOptionsSchema(s, 'options', 'remote')
  return z.fromJSONSchema(s as Parameters<typeof z.fromJSONSchema>[0])
}

/** Validates a parsed /meta document; throws an Error naming the problem. */
export function validateMeta(raw: unknown, where: string): { meta: DeclaredAgentMeta; options: z.ZodType } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where}: /meta is not a JSON object`)
  const r = raw as Record<string, unknown>
  if (typeof r.api === 'number' && r.api !== SDK_API_VERSION) {
    const id = typeof r.id === 'string' ? `${r.id.slice(0, 41)} ` : ''
    throw new Error(`${where}: agent ${id}targets SDK API ${r.api}; this host speaks ${SDK_API_VERSION}`)
  }
  const parsed = agentMetaSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue.path.length ? issue.path.join('.') : '(root)'
    throw new Error(`${where}: invalid /meta: ${field}: ${issue.message}`)
  }
  let options: z.ZodType
  try {
    options = optionsFromJsonSchema(parsed.data.options)
  } catch (err) {
    throw new Error(`${where}: invalid /meta: options: ${errText(err)}`)
  }
  return { meta: { ...parsed.data, needs: [...new Set(parsed.data.needs)] }, options }
}

// ---------------------------------------------------------------------------
// circuit breaker

type Admission = 'pass' | 'trial' | 'reject'

class Breaker {
  state: 'closed' | 'open' | 'half-open' = 'closed'
  consecutive = 0
  private openedAt = 0
  private readonly threshold: number
  private readonly cooldownMs: number

  constructor(threshold: number, cooldownMs: number) {
    this.threshold = threshold
    this.cooldownMs = cooldownMs
  }

  admit(now: number): Admission {
    if (this.state === 'closed') return 'pass'
    if (this.state === 'half-open') return 'reject' // one trial at a time
    if (now - this.openedAt < this.cooldownMs) return 'reject'
    this.state = 'half-open'
    return 'trial'
  }

  success(): void {
    this.state = 'closed'
    this.consecutive = 0
  }

  failure(now: number): void {
    this.consecutive++
    if (this.state === 'half-open' || this.consecutive >= this.threshold) {
      this.state = 'open'
      this.openedAt = now
    }
  }

  /** a trial that ended without a verdict (the caller cancelled): allow another one */
  release(adm: Admission): void {
    if (adm === 'trial' && this.state === 'half-open') this.state = 'open'
  }
}

// ---------------------------------------------------------------------------
// loading

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || v <= 0) throw new Error(`remote agent config: ${name} must be a positive number`)
  return v
}

/** `<base>/<name>`, whatever trailing slashes the base has. */
function endpoint(base: URL, name: string): URL {
  const u = new URL(base.href)
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${name}`
  u.search = ''
  u.hash = ''
  return u
}

/**
 * Fetches and validates `<url>/meta` and returns an async agent definition
 * that scores over HTTP. Throws if the endpoint is refused by the SSRF
 * guard, unreachable, or describes an invalid agent. Pass `fetchImpl` to
 * use another client; the URL is then checked (scheme, addresses after DNS)
 * before each request, but the connection itself is not pinned.
 */
export async function loadRemoteAgent(cfg: RemoteAgentConfig, fetchImpl?: typeof fetch): Promise<RemoteAgentDefinition> {
  let base: URL
  try {
    base = new URL(cfg.url)
  } catch {
    throw new Error(`remote agent config: url ${JSON.stringify(cfg.url)} is not a valid URL`)
  }
  const allowPrivate = cfg.allowPrivateNetwork ?? false
  checkUrlStatic(base, allowPrivate)
  const rawDids = cfg.rawDids ?? false
  if (!rawDids && (typeof cfg.salt !== 'string' || cfg.salt.length === 0)) throw new Error('remote agent config: salt is required unless rawDids is granted')
  const deadlineMs = positive('deadlineMs', cfg.deadlineMs, DEFAULTS.deadlineMs)
  const maxBytes = positive('maxResponseBytes', cfg.maxResponseBytes, DEFAULTS.maxResponseBytes)
  const batchSize = Math.min(MAX_POSTS_PER_REQUEST, Math.floor(positive('batchSize', cfg.batchSize, DEFAULTS.batchSize)))
  const breaker = new Breaker(
    Math.floor(positive('breaker.failures', cfg.breaker?.failures, DEFAULTS.failures)),
    positive('breaker.cooldownMs', cfg.breaker?.cooldownMs, DEFAULTS.cooldownMs),
  )
  const guardOpts: GuardOptions = { allowPrivateNetwork: allowPrivate, resolve: cfg.resolve }
  const guarded = fetchImpl ? null : createGuardedFetch(guardOpts)
  const send: typeof fetch = fetchImpl
    ? async (input, init) => {
        await assertUrlAllowed(new URL(input instanceof Request ? input.url : input), guardOpts)
        return fetchImpl(input, { ...init, redirect: 'manual' })
      }
    : guarded!.fetch
  const headers = { accept: 'application/json', 'user-agent': USER_AGENT, 'x-skysift-protocol': REMOTE_PROTOCOL }
  const where = `remote agent ${base.href}`

  // /meta
  let meta: DeclaredAgentMeta
  let options: z.ZodType
  try {
    const signal = AbortSignal.timeout(Math.max(META_TIMEOUT_MS, deadlineMs))
    let res: Response
    try {
      res = await send(endpoint(base, 'meta'), { method: 'GET', headers, signal, redirect: 'manual' })
    } catch (err) {
      if (err instanceof SsrfError) throw err
      throw new Error(`${where}: GET /meta failed: ${signal.aborted ? 'timed out' : errText(err)}`)
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel().catch(() => {})
      throw new Error(`${where}: GET /meta answered a redirect (HTTP ${res.status}); redirects are not followed`)
    }
    if (!res.ok) throw new Error(`${where}: GET /meta answered ${await httpError(res, signal)}`)
    let text: string
    try {
      text = await readCapped(res, maxBytes, signal)
    } catch (err) {
      throw new Error(`${where}: GET /meta: ${signal.aborted ? 'timed out' : errText(err)}`)
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new Error(`${where}: /meta is not valid JSON`)
    }
    ;({ meta, options } = validateMeta(json, where))
  } catch (err) {
    guarded?.close()
    throw err
  }

  const needs = new Set<Need>(meta.needs)
  const salt = cfg.salt
  const scoreUrl = endpoint(base, 'score')
  const stats = { calls: 0, requests: 0, failures: 0, timeouts: 0, skipped: 0, lastError: null as string | null }

  const fail = (why: string) => {
    stats.failures++
    stats.lastError = why.slice(0, 500)
    breaker.failure(performance.now())
  }

  async function scoreChunk(posts: AgentPost[], ctx: AgentContext<unknown> & { signal: AbortSignal }): Promise<Score[]> {
    const none = () => new Array<Score>(posts.length).fill(null)
    if (ctx.signal.aborted) return none()
    const adm = breaker.admit(performance.now())
    if (adm === 'reject') {
      stats.skipped++
      return none()
    }
    const timeout = AbortSignal.timeout(deadlineMs)
    const signal = AbortSignal.any([ctx.signal, timeout])
    const body = JSON.stringify({
      api: SDK_API_VERSION,
      agent: meta.id,
      options: ctx.options ?? {},
      now: ctx.now,
      posts: posts.map((p) => toWirePost(p, needs, salt, rawDids)),
    })
    stats.requests++
    try {
      const res = await send(scoreUrl, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body, signal, redirect: 'manual' })
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel().catch(() => {})
        throw new Error(`redirect (HTTP ${res.status}) refused: remote agents must not redirect`)
      }
      if (!res.ok) throw new Error(await httpError(res, signal))
      const text = await readCapped(res, maxBytes, signal)
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        throw new Error('response is not valid JSON')
      }
      const scores = json && typeof json === 'object' ? (json as { scores?: unknown }).scores : undefined
      const problem = checkScores(scores, posts.length)
      if (problem) throw new Error(`bad response: ${scores === undefined ? 'no "scores" array' : problem}`)
      breaker.success()
      return scores as Score[]
    } catch (err) {
      if (timeout.aborted) {
        stats.timeouts++
        fail(`timed out after ${deadlineMs} ms`)
      } else if (ctx.signal.aborted) {
        breaker.release(adm) // the caller gave up: no verdict on the agent
      } else {
        fail(errText(err))
      }
      return none()
    }
  }

  const def: RemoteAgentDefinition = {
    kind: 'remote',
    url: base.href,
    id: meta.id,
    version: meta.version,
    title: meta.title,
    description: meta.description,
    ...(meta.author !== undefined ? { author: meta.author } : {}),
    api: meta.api,
    options,
    needs: [...needs],
    ...(meta.prefilter ? { prefilter: meta.prefilter } : {}),
    async scoreBatchAsync(posts, ctx) {
      stats.calls++
      if (posts.length === 0) return []
      // an agent that ranks candidates against each other must see them all at once
      const size = needs.has('candidates') ? posts.length : batchSize
      const chunks: AgentPost[][] = []
      for (let i = 0; i < posts.length; i += size) chunks.push(posts.slice(i, i + size))
      const results = await Promise.all(chunks.map((c) => scoreChunk(c, ctx)))
      return results.flat()
    },
    remoteStats() {
      return {
        calls: stats.calls,
        requests: stats.requests,
        failures: stats.failures,
        timeouts: stats.timeouts,
        skipped: stats.skipped,
        consecutiveFailures: breaker.consecutive,
        open: breaker.state !== 'closed',
        state: breaker.state,
        lastError: stats.lastError,
      }
    },
    close() {
      guarded?.close()
    },
  }
  return def
}

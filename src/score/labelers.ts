import type { IdResolver } from '@atproto/identity'
import type { Logger } from '../logger.ts'
import { createGuardedFetch, readCapped, type GuardedFetch } from './guarded-fetch.ts'

/** One label as `com.atproto.label.defs#label` carries it. */
interface Label {
  src: string
  uri: string
  val: string
  neg?: boolean
  cts: string
  exp?: string
}

export interface LabelerOptions {
  /** how long fetched labels are trusted */
  ttlMs?: number
  /** posts per queryLabels request */
  batch?: number
  maxEntries?: number
  /** let labelers live on loopback or private addresses (local networks) */
  allowPrivateNetwork?: boolean
  timeoutMs?: number
  /** distinct labelers fetched from at once, server-wide; a labeler past it is not fetched until another falls idle */
  maxLabelers?: number
  /** queryLabels requests in flight at once, over all labelers */
  concurrency?: number
  /** requests one labeler host (the host of its service endpoint) gets per minute at most */
  perHostPerMinute?: number
  /** how long a labeler that failed is left alone; doubled for each further failure in a row */
  backoffMs?: number
  maxBackoffMs?: number
}

/** What one labeler costs and how it behaves, for tests and the admin. */
export interface LabelerStats {
  requests: number
  failures: number
  /** labelers not fetched because the server-wide cap was reached */
  refused: number
}

interface LabelerState {
  did: string
  /** posts whose labels were asked for and not fetched yet */
  wanted: Set<string>
  lastWanted: number
  inFlight: boolean
  /** failures in a row */
  failures: number
  /** not fetched before this time (backoff, or its host's budget spent) */
  notBefore: number
}

const LABELER_SERVICE = '#atproto_labeler'
const DID_RE = /^did:(plc|web):[a-zA-Z0-9._:%-]{1,200}$/
const MINUTE = 60_000
/** posts waiting per labeler at most (the most candidates a feed may rank); more are asked for at the next refresh */
const MAX_WANTED = 10_000
/** the most bytes one queryLabels answer may take (250 labels are far less) */
const MAX_BODY = 1 << 20

/**
 * Labels from labelers a reader names, fetched with
 * `com.atproto.label.queryLabels` from each labeler's service and cached.
 * Lookups are synchronous (ranking is); what is not cached yet is fetched
 * in the background, so a freshly labelled post is caught by the next
 * refresh of the list.
 *
 * Labelers are named by readers and their hosts by DID documents their
 * owners control, so every cost has a bound: at most `maxLabelers` distinct
 * labelers at once, `concurrency` requests in flight, one request per
 * labeler at a time taken in turn (round robin, so a slow or busy labeler
 * cannot hold up another reader's), `perHostPerMinute` requests per host,
 * and a labeler that fails is left alone for a growing while.
 */
export class LabelerLabels {
  private readonly idResolver: IdResolver
  private readonly log: Logger
  private readonly opts: Required<LabelerOptions>
  private readonly fetcher: GuardedFetch
  /** key `${labeler} ${uri}` → values and when they were fetched */
  private readonly cache = new Map<string, { vals: string[]; at: number }>()
  private readonly endpoints = new Map<string, { url: string | null; at: number }>()
  /** labelers in turn order (a Map keeps insertion order) */
  private readonly labelers = new Map<string, LabelerState>()
  /** per host, the times of its requests in the last minute */
  private readonly hostRequests = new Map<string, number[]>()
  private readonly perLabeler = new Map<string, LabelerStats>()
  private readonly idleWaiters: (() => void)[] = []
  /** the labeler whose turn came last */
  private lastTurn: string | null = null
  private inFlight = 0
  private timer: NodeJS.Timeout | null = null
  private refusedLoggedAt = 0
  private closed = false

  constructor(idResolver: IdResolver, log: Logger, opts: LabelerOptions = {}) {
    this.idResolver = idResolver
    this.log = log
    this.opts = {
      ttlMs: 10 * MINUTE,
      batch: 50,
      maxEntries: 500_000,
      allowPrivateNetwork: false,
      timeoutMs: 3000,
      maxLabelers: 50,
      concurrency: 4,
      perHostPerMinute: 60,
      backoffMs: 30_000,
      maxBackoffMs: 30 * MINUTE,
      ...opts,
    }
    this.fetcher = createGuardedFetch({ allowPrivateNetwork: this.opts.allowPrivateNetwork })
  }

  /** The cached label values per post from these labelers; what is missing or stale is fetched later. */
  lookup(labelers: string[], uris: string[], now = Date.now()): Map<string, string[]> {
    const out = new Map<string, string[]>()
    for (const labeler of labelers) {
      if (!DID_RE.test(labeler)) continue
      const state = this.admit(labeler, now)
      for (const uri of uris) {
        const hit = this.cache.get(`${labeler} ${uri}`)
        // @NOTE a labeler in backoff is not asked again until its pause ends: its wishes would only pile up
        if (state && (!hit || now - hit.at > this.opts.ttlMs) && !(state.failures && state.notBefore > now) && state.wanted.size < MAX_WANTED) {
          state.wanted.add(uri)
          state.lastWanted = now
        }
        if (hit?.vals.length) out.set(uri, [...(out.get(uri) ?? []), ...hit.vals])
      }
    }
    this.pump()
    return out
  }

  /** Requests and failures per labeler so far (refused: labelers turned away by the server-wide cap). */
  stats(): { labelers: Record<string, LabelerStats>; active: number } {
    return { labelers: Object.fromEntries([...this.perLabeler].map(([k, v]) => [k, { ...v }])), active: this.labelers.size }
  }

  /** Resolves when every fetch asked for so far has finished or been given up (tests, shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    for (const s of this.labelers.values()) s.wanted.clear()
    this.settleIdle()
    this.fetcher.close?.()
  }

  /** The labeler's state, made when there is room under the server-wide cap; null when there is none. */
  private admit(did: string, now: number): LabelerState | null {
    const have = this.labelers.get(did)
    if (have) return have
    if (this.labelers.size >= this.opts.maxLabelers) {
      for (const [k, s] of this.labelers) {
        if (!s.inFlight && s.wanted.size === 0 && now - s.lastWanted > this.opts.ttlMs) this.labelers.delete(k)
      }
    }
    if (this.labelers.size >= this.opts.maxLabelers) {
      this.statsOf(did).refused++
      if (now - this.refusedLoggedAt > MINUTE) {
        this.refusedLoggedAt = now
        this.log.warn({ labeler: did, max: this.opts.maxLabelers }, 'labeler cap reached; labeler not fetched')
      }
      return null
    }
    const s: LabelerState = { did, wanted: new Set(), lastWanted: now, inFlight: false, failures: 0, notBefore: 0 }
    this.labelers.set(did, s)
    return s
  }

  private statsOf(did: string): LabelerStats {
    let st = this.perLabeler.get(did)
    if (!st) {
      if (this.perLabeler.size >= this.opts.maxLabelers * 4) this.perLabeler.clear()
      this.perLabeler.set(did, (st = { requests: 0, failures: 0, refused: 0 }))
    }
    return st
  }

  private isIdle(): boolean {
    if (this.inFlight > 0) return false
    for (const s of this.labelers.values()) if (s.wanted.size) return false
    return true
  }

  private settleIdle(): void {
    if (!this.isIdle()) return
    for (const w of this.idleWaiters.splice(0)) w()
  }

  /** Starts turns while there is room in flight, taking labelers in turn after the one served last. */
  private pump(): void {
    if (this.closed) return this.settleIdle()
    const now = Date.now()
    let wake = Infinity
    while (this.inFlight < this.opts.concurrency) {
      const next = this.nextReady(now)
      if (!next.state) {
        wake = next.wake
        break
      }
      this.lastTurn = next.state.did
      void this.turn(next.state)
    }
    if (wake < Infinity && !this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = null
          this.pump()
        },
        Math.max(10, wake - now),
      )
      this.timer.unref()
    }
    this.settleIdle()
  }

  /** The first labeler after the last turn that has work and may be asked now; else when one may be. */
  private nextReady(now: number): { state: LabelerState | null; wake: number } {
    const all = [...this.labelers.values()]
    const start = this.lastTurn === null ? 0 : all.findIndex((s) => s.did === this.lastTurn) + 1
    let wake = Infinity
    for (let i = 0; i < all.length; i++) {
      const s = all[(start + i) % all.length]
      if (s.inFlight || s.wanted.size === 0) continue
      if (s.notBefore > now) {
        wake = Math.min(wake, s.notBefore)
        continue
      }
      return { state: s, wake }
    }
    return { state: null, wake }
  }

  /** One labeler's turn: one queryLabels request for up to `batch` of its posts. */
  private async turn(s: LabelerState): Promise<void> {
    s.inFlight = true
    this.inFlight++
    const uris = [...s.wanted].slice(0, this.opts.batch)
    try {
      const base = await this.endpoint(s.did)
      const host = base ? new URL(base).host : null
      if (host && !this.spend(host, s)) return
      for (const uri of uris) s.wanted.delete(uri)
      await this.fetchBatch(s.did, base, uris)
      s.failures = 0
    } catch (err) {
      s.failures++
      const pause = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (s.failures - 1))
      s.notBefore = Date.now() + pause
      s.wanted.clear()
      this.statsOf(s.did).failures++
      this.log.warn({ labeler: s.did, failures: s.failures, pauseMs: pause, err: (err as Error).message }, 'cannot fetch labels; labeler paused')
    } finally {
      s.inFlight = false
      this.inFlight--
      this.pump()
    }
  }

  /** Takes one request from the host's budget; when it is spent, the labeler waits until there is room. */
  private spend(host: string, s: LabelerState): boolean {
    const now = Date.now()
    const times = (this.hostRequests.get(host) ?? []).filter((t) => now - t < MINUTE)
    if (times.length >= this.opts.perHostPerMinute) {
      this.hostRequests.set(host, times)
      s.notBefore = times[0] + MINUTE
      return false
    }
    times.push(now)
    if (!this.hostRequests.has(host) && this.hostRequests.size >= this.opts.maxLabelers * 4) {
      for (const [h, ts] of this.hostRequests) if (!ts.some((t) => now - t < MINUTE)) this.hostRequests.delete(h)
    }
    this.hostRequests.set(host, times)
    return true
  }

  private async endpoint(labeler: string): Promise<string | null> {
    const have = this.endpoints.get(labeler)
    if (have && Date.now() - have.at < this.opts.ttlMs) return have.url
    const doc = await this.idResolver.did.resolve(labeler)
    const svc = doc?.service?.find((s) => s.id === LABELER_SERVICE || s.id === `${labeler}${LABELER_SERVICE}`)
    const url = typeof svc?.serviceEndpoint === 'string' ? svc.serviceEndpoint.replace(/\/+$/, '') : null
    if (this.endpoints.size >= this.opts.maxLabelers * 4) this.endpoints.clear()
    this.endpoints.set(labeler, { url, at: Date.now() })
    return url
  }

  private async fetchBatch(labeler: string, base: string | null, uris: string[]): Promise<void> {
    const now = Date.now()
    const found = new Map<string, Label[]>()
    if (base) {
      const u = new URL(`${base}/xrpc/com.atproto.label.queryLabels`)
      for (const uri of uris) u.searchParams.append('uriPatterns', uri)
      u.searchParams.append('sources', labeler)
      u.searchParams.set('limit', '250')
      const ac = new AbortController()
      const t = setTimeout(() => ac.abort(new Error(`no answer in ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs)
      this.statsOf(labeler).requests++
      try {
        const res = await this.fetcher.fetch(u, { signal: ac.signal, headers: { accept: 'application/json' } })
        if (!res.ok) {
          await res.body?.cancel().catch(() => {})
          throw new Error(`queryLabels answered ${res.status}`)
        }
        const body = JSON.parse(await readCapped(res, MAX_BODY, ac.signal)) as { labels?: unknown }
        for (const l of Array.isArray(body?.labels) ? (body.labels as Label[]) : []) {
          if (!l || l.src !== labeler || typeof l.uri !== 'string' || typeof l.val !== 'string') continue
          const list = found.get(l.uri) ?? []
          list.push(l)
          found.set(l.uri, list)
        }
      } finally {
        clearTimeout(t)
      }
    }
    if (this.cache.size + uris.length > this.opts.maxEntries) this.cache.clear()
    for (const uri of uris) this.cache.set(`${labeler} ${uri}`, { vals: effective(found.get(uri) ?? [], now), at: now })
  }
}

/** Label values in force: the latest label per value wins (a negation removes it); expired ones are gone. */
export function effective(labels: Label[], now: number): string[] {
  const latest = new Map<string, Label>()
  for (const l of labels) {
    const prev = latest.get(l.val)
    if (!prev || Date.parse(l.cts) >= Date.parse(prev.cts)) latest.set(l.val, l)
  }
  return [...latest.values()].filter((l) => !l.neg && !(l.exp && Date.parse(l.exp) < now)).map((l) => l.val)
}

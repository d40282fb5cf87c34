import type { IdResolver } from '@atproto/identity'
import type { Logger } from '../logger.ts'
import { createGuardedFetch, type GuardedFetch } from './remote.ts'

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
}

const LABELER_SERVICE = '#atproto_labeler'
const DID_RE = /^did:(plc|web):[a-zA-Z0-9._:%-]{1,200}$/

/**
 * Labels from labelers a reader names, fetched with
 * `com.atproto.label.queryLabels` from each labeler's service and cached.
 * Lookups are synchronous (ranking is); what is not cached yet is fetched
 * in the background, so a freshly labelled post is caught by the next
 * refresh of the list.
 */
export class LabelerLabels {
  private readonly idResolver: IdResolver
  private readonly log: Logger
  private readonly opts: Required<LabelerOptions>
  private readonly fetcher: GuardedFetch
  /** key `${labeler} ${uri}` → values and when they were fetched */
  private readonly cache = new Map<string, { vals: string[]; at: number }>()
  private readonly endpoints = new Map<string, { url: string | null; at: number }>()
  private readonly wanted = new Map<string, Set<string>>()
  private running: Promise<void> | null = null

  constructor(idResolver: IdResolver, log: Logger, opts: LabelerOptions = {}) {
    this.idResolver = idResolver
    this.log = log
    this.opts = { ttlMs: 10 * 60_000, batch: 50, maxEntries: 500_000, allowPrivateNetwork: false, timeoutMs: 3000, ...opts }
    this.fetcher = createGuardedFetch({ allowPrivateNetwork: this.opts.allowPrivateNetwork })
  }

  /** The cached label values per post from these labelers; what is missing or stale is fetched later. */
  lookup(labelers: string[], uris: string[], now = Date.now()): Map<string, string[]> {
    const out = new Map<string, string[]>()
    for (const labeler of labelers) {
      if (!DID_RE.test(labeler)) continue
      for (const uri of uris) {
        const hit = this.cache.get(`${labeler} ${uri}`)
        if (!hit || now - hit.at > this.opts.ttlMs) this.want(labeler, uri)
        if (hit?.vals.length) out.set(uri, [...(out.get(uri) ?? []), ...hit.vals])
      }
    }
    if (this.wanted.size) this.kick()
    return out
  }

  /** Resolves when every fetch asked for so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running
  }

  close(): void {
    this.fetcher.close?.()
  }

  private want(labeler: string, uri: string): void {
    let set = this.wanted.get(labeler)
    if (!set) this.wanted.set(labeler, (set = new Set()))
    set.add(uri)
  }

  private kick(): void {
    if (this.running) return
    this.running = this.drain().finally(() => {
      this.running = null
      if (this.wanted.size) this.kick()
    })
  }

  private async drain(): Promise<void> {
    while (this.wanted.size) {
      const [labeler, set] = this.wanted.entries().next().value as [string, Set<string>]
      this.wanted.delete(labeler)
      const uris = [...set]
      for (let i = 0; i < uris.length; i += this.opts.batch) {
        await this.fetchBatch(labeler, uris.slice(i, i + this.opts.batch)).catch((err) =>
          this.log.warn({ labeler, err: (err as Error).message }, 'cannot fetch labels'),
        )
      }
    }
  }

  private async endpoint(labeler: string): Promise<string | null> {
    const have = this.endpoints.get(labeler)
    if (have && Date.now() - have.at < this.opts.ttlMs) return have.url
    const doc = await this.idResolver.did.resolve(labeler)
    const svc = doc?.service?.find((s) => s.id === LABELER_SERVICE || s.id === `${labeler}${LABELER_SERVICE}`)
    const url = typeof svc?.serviceEndpoint === 'string' ? svc.serviceEndpoint.replace(/\/+$/, '') : null
    this.endpoints.set(labeler, { url, at: Date.now() })
    return url
  }

  private async fetchBatch(labeler: string, uris: string[]): Promise<void> {
    const base = await this.endpoint(labeler)
    const now = Date.now()
    const found = new Map<string, Label[]>()
    if (base) {
      const u = new URL(`${base}/xrpc/com.atproto.label.queryLabels`)
      for (const uri of uris) u.searchParams.append('uriPatterns', uri)
      u.searchParams.append('sources', labeler)
      u.searchParams.set('limit', '250')
      const ac = new AbortController()
      const t = setTimeout(() => ac.abort(), this.opts.timeoutMs)
      try {
        const res = await this.fetcher.fetch(u, { signal: ac.signal, headers: { accept: 'application/json' } })
        if (!res.ok) throw new Error(`queryLabels answered ${res.status}`)
        const body = (await res.json()) as { labels?: unknown }
        for (const l of Array.isArray(body.labels) ? (body.labels as Label[]) : []) {
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

import type { IdResolver } from '@atproto/identity'
import type { Logger } from '../../logger.ts'

/** What the pages need to turn an account's DID into its handle. */
export interface HandleLookups {
  /** the handle a DID document claims (alsoKnownAs), or undefined */
  claimed(did: string): Promise<string | undefined>
  /** the DID a handle points at (DNS or https, or a resolveHandle service), or undefined */
  resolve(handle: string): Promise<string | undefined>
}

export interface HandleDirectoryOptions {
  /** handles remembered at most (least recently used out) */
  max: number
  /** how long a handle (or a failed look-up) is remembered */
  ttlMs: number
  failedTtlMs: number
  /** look-ups running at once */
  concurrency: number
  /** DIDs waiting for a look-up at most; more wait for a later page */
  queue: number
}

const DEFAULTS: HandleDirectoryOptions = { max: 10_000, ttlMs: 6 * 3_600_000, failedTtlMs: 10 * 60_000, concurrency: 4, queue: 200 }

interface Entry {
  handle: string | null
  at: number
}

/**
 * Handles for the web pages, resolved and cached: a DID's handle is shown
 * only when it checks out both ways (the DID document claims the handle and
 * the handle points back at the DID), as apps do. Look-ups are bounded: a
 * few at once, a short line of waiting DIDs, a bounded cache; a page waits a
 * moment for the handles it shows and falls back to the DID.
 */
export class HandleDirectory {
  private readonly lookups: HandleLookups
  private readonly log: Logger
  private readonly o: HandleDirectoryOptions
  private readonly cache = new Map<string, Entry>()
  private readonly pending = new Map<string, Promise<void>>()
  private readonly waiting: { did: string; done: () => void }[] = []
  private running = 0

  constructor(lookups: HandleLookups, log: Logger, opts: Partial<HandleDirectoryOptions> = {}) {
    this.lookups = lookups
    this.log = log
    this.o = { ...DEFAULTS, ...opts }
  }

  /** The handles known for `dids` after waiting at most `waitMs` for the ones not known yet (those not found are left out). */
  async handles(dids: Iterable<string>, waitMs = 500, now = Date.now()): Promise<Map<string, string>> {
    const unique = [...new Set(dids)]
    const todo = unique.filter((d) => !this.fresh(d, now)).map((d) => this.lookUp(d))
    if (todo.length) await Promise.race([Promise.all(todo), new Promise((r) => setTimeout(r, waitMs).unref())])
    const out = new Map<string, string>()
    for (const d of unique) {
      const e = this.cache.get(d)
      if (e?.handle) out.set(d, e.handle)
    }
    return out
  }

  private fresh(did: string, now: number): boolean {
    const e = this.cache.get(did)
    if (!e) return false
    if (now - e.at < (e.handle ? this.o.ttlMs : this.o.failedTtlMs)) {
      // least recently used out: a hit moves to the end
      this.cache.delete(did)
      this.cache.set(did, e)
      return true
    }
    return false
  }

  private lookUp(did: string): Promise<void> {
    const have = this.pending.get(did)
    if (have) return have
    if (this.waiting.length >= this.o.queue) return Promise.resolve()
    const p = new Promise<void>((done) => this.waiting.push({ did, done }))
    this.pending.set(did, p)
    this.pump()
    return p
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.waiting.length) {
      const { did, done } = this.waiting.shift()!
      this.running++
      this.verified(did)
        .then(
          (handle) => this.remember(did, handle),
          (err) => {
            this.log.debug({ did, err: (err as Error).message }, 'handle look-up failed')
            this.remember(did, null)
          },
        )
        .finally(() => {
          this.running--
          this.pending.delete(did)
          done()
          this.pump()
        })
    }
  }

  private async verified(did: string): Promise<string | null> {
    const handle = await this.lookups.claimed(did)
    if (!handle) return null
    return (await this.lookups.resolve(handle)) === did ? handle : null
  }

  private remember(did: string, handle: string | null): void {
    if (this.cache.size >= this.o.max) this.cache.delete(this.cache.keys().next().value!)
    this.cache.set(did, { handle, at: Date.now() })
  }
}

/**
 * Look-ups through the server's identity resolver: the DID document's
 * claimed handle, and the handle resolved by DNS and https, or, when
 * `resolveHandleService` is set (SKYSIFT_OAUTH_HANDLE_RESOLVER), by that
 * service's com.atproto.identity.resolveHandle.
 */
export function identityLookups(idResolver: IdResolver, resolveHandleService?: string): HandleLookups {
  return {
    async claimed(did) {
      const doc = await idResolver.did.resolve(did).catch(() => null)
      const aka = doc?.alsoKnownAs?.find((a) => a.startsWith('at://'))
      const handle = aka?.slice('at://'.length).toLowerCase()
      return handle && /^[a-z0-9.-]{1,253}$/.test(handle) && handle !== 'handle.invalid' ? handle : undefined
    },
    async resolve(handle) {
      if (!resolveHandleService) return idResolver.handle.resolve(handle)
      const url = new URL('/xrpc/com.atproto.identity.resolveHandle', resolveHandleService)
      url.searchParams.set('handle', handle)
      const res = await fetch(url, { signal: AbortSignal.timeout(3000), redirect: 'error' })
      if (!res.ok) return undefined
      const body = (await res.json().catch(() => null)) as { did?: unknown } | null
      return typeof body?.did === 'string' ? body.did : undefined
    },
  }
}

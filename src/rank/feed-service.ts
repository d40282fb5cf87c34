import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { AgentHost } from '../score/host.ts'
import type { MixStore, StoredMix } from '../store/mixes.ts'
import { decodeCursor, encodeCursor } from './cursor.ts'
import type { FeedCache, SnapshotInfo } from './feed-cache.ts'
import { resolveMix, type MixEntry, type ResolvedMix } from './mix.ts'

export interface SkeletonItem {
  post: string
  feedContext: string
}

export interface Skeleton {
  feed: SkeletonItem[]
  cursor?: string
}

export class BadCursorError extends Error {}

export interface MixView {
  feed: string
  agents: MixEntry[]
  source: 'private' | 'record' | 'default'
  fingerprint: string
  updatedAt?: number
}

export interface FeedServiceDeps {
  feeds: Feed[]
  host: AgentHost
  mixes: MixStore
  cache: FeedCache
  log: Logger
  cacheTtlMs: number
  /** ask a refresh worker to rebuild a list; rejects when the queue is unreachable */
  requestRefresh?: (feed: Feed, mix: ResolvedMix) => Promise<void>
  /** tell score workers about static agent instances a new mix uses */
  registerInstances?: (mix: ResolvedMix) => Promise<void>
}

const MAX_RESOLVED = 10_000

/**
 * The feed pipeline: whose mix applies → which cached snapshot → a page of
 * it. Stale lists are served at once and refreshed in the background.
 */
export class FeedService {
  readonly feeds: Feed[]
  private readonly byUri = new Map<string, Feed>()
  private readonly d: FeedServiceDeps
  private readonly resolved = new Map<string, ResolvedMix>()
  private readonly refreshing = new Map<string, number>()

  constructor(deps: FeedServiceDeps) {
    this.d = deps
    this.feeds = deps.feeds
    for (const f of deps.feeds) this.byUri.set(f.uri, f)
  }

  feed(uri: string): Feed | undefined {
    return this.byUri.get(uri)
  }

  /** Finds a hosted feed by its record key, whatever DID the URI names (used when no publisher is configured). */
  feedByRkey(rkey: string): Feed | undefined {
    return this.feeds.find((f) => f.rkey === rkey)
  }

  /** The mix that applies to a reader: their saved one, else the feed's default. */
  mixFor(feed: Feed, subscriber: string | null): { mix: ResolvedMix; stored?: StoredMix } {
    if (subscriber) {
      const stored = this.d.mixes.effective(subscriber, feed.uri)
      if (stored) {
        const mix = this.resolve(feed, stored.fingerprint, stored.agents)
        if (mix) return { mix, stored }
      }
    }
    return { mix: feed.defaults }
  }

  private resolve(feed: Feed, fingerprint: string, agents: MixEntry[]): ResolvedMix | null {
    const key = `${feed.uri} ${fingerprint}`
    const hit = this.resolved.get(key)
    if (hit) return hit
    try {
      const mix = resolveMix(this.d.host, agents, feed.base)
      if (this.resolved.size >= MAX_RESOLVED) this.resolved.clear()
      this.resolved.set(key, mix)
      return mix
    } catch (err) {
      // an agent was removed or changed its options since the mix was saved: fall back to the default
      this.d.log.warn({ feed: feed.rkey, err: (err as Error).message }, 'saved mix no longer valid; using default')
      return null
    }
  }

  /** One page of a reader's feed. */
  skeleton(feed: Feed, subscriber: string | null, limit: number, cursor?: string): Skeleton {
    let snapshot: number
    let after = 0
    if (cursor) {
      const c = decodeCursor(cursor)
      if (!c) throw new BadCursorError('malformed cursor')
      // @NOTE an expired snapshot ends paging rather than restarting it, so nothing repeats
      if (!this.d.cache.exists(c.snapshot)) return { feed: [] }
      snapshot = c.snapshot
      after = c.rank
    } else {
      const { mix } = this.mixFor(feed, subscriber)
      snapshot = this.current(feed, mix).id
    }
    const items = this.d.cache.page(snapshot, after, limit)
    const out: Skeleton = { feed: items.map((i) => ({ post: i.postUri, feedContext: i.context })) }
    if (items.length === limit) out.cursor = encodeCursor({ snapshot, rank: items[items.length - 1].rank })
    return out
  }

  /** The newest snapshot for a mix; built now if there is none, refreshed in the background if stale. */
  current(feed: Feed, mix: ResolvedMix, now = Date.now()): SnapshotInfo {
    const snap = this.d.cache.latest(feed.uri, mix.fingerprint)
    if (!snap) return this.d.cache.build(feed, mix, now)
    if (now - snap.builtAt > this.d.cacheTtlMs) this.refreshLater(feed, mix, now)
    return snap
  }

  private refreshLater(feed: Feed, mix: ResolvedMix, now: number): void {
    const key = `${feed.uri} ${mix.fingerprint}`
    const last = this.refreshing.get(key) ?? 0
    if (now - last < this.d.cacheTtlMs) return
    this.refreshing.set(key, now)
    const inline = () => {
      setImmediate(() => {
        try {
          this.d.cache.build(feed, mix)
        } catch (err) {
          this.d.log.error({ err, feed: feed.rkey }, 'inline refresh failed')
        }
      })
    }
    if (!this.d.requestRefresh) return inline()
    this.d.requestRefresh(feed, mix).catch((err) => {
      // Redis is unreachable: refresh here so the list still follows the posts
      this.d.log.warn({ err: (err as Error).message, feed: feed.rkey }, 'refresh queue unreachable; refreshing inline')
      inline()
    })
  }

  /** What getMix answers. */
  viewMix(feed: Feed, subscriber: string): MixView {
    const { mix, stored } = this.mixFor(feed, subscriber)
    if (stored) return { feed: feed.uri, agents: stored.agents, source: stored.source, fingerprint: stored.fingerprint, updatedAt: stored.updatedAt }
    return { feed: feed.uri, agents: mix.agents, source: 'default', fingerprint: mix.fingerprint }
  }

  /** Validates and saves a private mix (throws FieldError naming the bad field). */
  async putMix(feed: Feed, subscriber: string, agents: unknown): Promise<MixView> {
    const mix = resolveMix(this.d.host, agents, feed.base)
    const saved = this.d.mixes.put({ subscriber, feed: feed.uri, source: 'private', agents: mix.agents, fingerprint: mix.fingerprint })
    await this.d.registerInstances?.(mix).catch((err) => this.d.log.warn({ err: (err as Error).message }, 'could not register agent instances; they are scored at refresh'))
    return { feed: feed.uri, agents: saved.agents, source: 'private', fingerprint: mix.fingerprint, updatedAt: saved.updatedAt }
  }
}

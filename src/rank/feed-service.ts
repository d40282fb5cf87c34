import { randomBytes } from 'node:crypto'
import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { AgentHost } from '../score/host.ts'
import type { FollowGraph } from '../store/follow-graph.ts'
import type { ReaderFilter } from '../store/reader-filter.ts'
import type { InteractionStore, StoredInteraction } from '../store/interactions.ts'
import type { MixStore, StoredMix } from '../store/mixes.ts'
import { feedIndexOf } from '../feed/request-id.ts'
import { canonicalJson, shortHash } from '../util/canonical.ts'
import { WorkQueue, yieldToLoop } from '../util/work-queue.ts'
import { decodeCursor, encodeCursor, verifyCursor } from './cursor.ts'
import { explain, type Explanation } from './explain.ts'
import type { CacheItem, FeedCache, ListItem, SnapshotInfo } from './feed-cache.ts'
import { decodeFeedContext } from './feed-context.ts'
import { withInterests } from './interests.ts'
import { applyNudges, nudgesOf, overlay, overlayState, strengthOf, type FeedbackEvent, type Nudge } from './feedback.ts'
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
  /** the entries as the reader set them (or the feed's default) */
  agents: MixEntry[]
  source: 'private' | 'record' | 'default'
  fingerprint: string
  updatedAt?: number
  /** weight changes from the reader's feedback, per entry of `agents` (0 = none) */
  nudges: number[]
}

export interface FeedbackView extends StoredInteraction {
  nudges: Nudge[]
}

export interface FeedServiceDeps {
  feeds: Feed[]
  host: AgentHost
  mixes: MixStore
  cache: FeedCache
  log: Logger
  cacheTtlMs: number
  /** ask a refresh worker to rebuild a list; rejects when the queue is unreachable */
  requestRefresh?: (feed: Feed, mix: ResolvedMix, subscriber: string | null, opts: { complete: boolean }) => Promise<void>
  /** the reader's follow graph, for personal agents */
  graph?: FollowGraph
  /** readers' feedback; without it there is no personal layer */
  interactions?: InteractionStore
  /** tell score workers about static agent instances a new mix uses */
  registerInstances?: (mix: ResolvedMix) => Promise<void>
  /** told the feedContext of every item served (usage counting) */
  onServed?: (contexts: string[]) => void
  /** told, for every first page, whether its shared list was fresh, stale (served, refresh asked) or missing (built now) */
  onCacheLookup?: (outcome: 'fresh' | 'stale' | 'miss') => void
  /** which posts a reader may be shown (consent, blocks): pages are filled past the ones they may not */
  readerFilter?: Pick<ReaderFilter, 'pageFilter'>
  /** told of every signed-in reader (a request, a saved mix, a web sign-in): their graph is backfilled the first time */
  onReader?: (did: string) => void
  /** the newest candidates a preview ranks (SKYSIFT_PREVIEW_CANDIDATES) */
  previewCandidates?: number
  /** previews waiting their turn at most (SKYSIFT_PREVIEW_QUEUE); more are refused */
  previewQueue?: number
  /** signs paging cursors (SKYSIFT_CURSOR_SECRET or one kept in SQLite); without it, one made for this process */
  cursorSecret?: string
}

/** The longest rest a preview takes after one step (a step that long is already an outlier). */
const PREVIEW_MAX_REST_MS = 50

/** Defaults of SKYSIFT_PREVIEW_CANDIDATES and SKYSIFT_PREVIEW_QUEUE. */
export const PREVIEW_DEFAULTS = { candidates: 2000, queue: 8 }

const MAX_CACHED = 10_000
/** Further reads of a list to fill a page the reader's filter thinned (each reads up to a page). */
const MAX_FILL_ROUNDS = 8
/** Nudges decay: a reader's effective mix is recomputed at least this often. */
const NUDGE_RECHECK_MS = 3_600_000

/** The cache key of a list: the mix fingerprint, plus the reader for personal mixes. */
export function listKey(mix: ResolvedMix, subscriber: string | null): string {
  return mix.personal && subscriber ? `${mix.fingerprint}.${shortHash(subscriber, 12)}` : mix.fingerprint
}

function remember<K, V>(m: Map<K, V>, k: K, v: V): V {
  if (m.size >= MAX_CACHED) m.clear()
  m.set(k, v)
  return v
}

interface Effective {
  mix: ResolvedMix
  stored?: StoredMix
  base: MixEntry[]
  nudges: number[]
  signature: string
  at: number
  /** the reader had interactions that still count when the entry was made (an overlay applies) */
  feedback?: boolean
}

/**
 * The feed pipeline: whose mix applies (with their feedback's nudges) →
 * which cached list → the reader's own overlay of it (asked-for items first,
 * waved-off ones gone, seen ones lower) → a page. Stale lists are served at
 * once and refreshed in the background.
 */
/** A list shorter than a default page counts as short: it is rebuilt as soon as posts arrive (see current()). */
export const SHORT_LIST = 50
/** A short list is rebuilt at most this often while posts keep arriving. */
export const SHORT_LIST_REBUILD_MS = 2000

export class FeedService {
  readonly feeds: Feed[]
  private readonly byUri = new Map<string, Feed>()
  private readonly d: FeedServiceDeps
  private readonly resolved = new Map<string, ResolvedMix>()
  private readonly byFingerprint = new Map<string, ResolvedMix>()
  private readonly effective = new Map<string, Effective>()
  private readonly refreshing = new Map<string, number>()
  private readonly requests = new Map<string, string>()
  private readonly views = new WeakMap<CacheItem[], { feed: SkeletonItem[]; contexts: string[] }>()
  private readonly feedJsons = new WeakMap<SkeletonItem[], string>()
  private readonly anonymous = new Map<string, Effective>()
  /** overlay keys whose reader has no active interaction (so the shared list is served) */
  private readonly noOverlay = new Map<string, true>()
  /** previews run one at a time, each yielding the event loop between agents */
  private readonly previews: WorkQueue
  private readonly cursorSecret: string
  /** readers who were served a mix of their own (nudged by feedback) by its fingerprint, for explain() */
  private readonly ownMixes = new Map<string, Set<string>>()
  /** per reader and feed: the overlay last made and the feedback signature it was made for */
  private readonly overlays = new Map<string, { key: string; signature: string; snap: SnapshotInfo }>()
  /** overlays being made after a response */
  private readonly making = new Set<string>()

  constructor(deps: FeedServiceDeps) {
    this.d = deps
    this.feeds = deps.feeds
    this.previews = new WorkQueue(deps.previewQueue ?? PREVIEW_DEFAULTS.queue)
    this.cursorSecret = deps.cursorSecret ?? randomBytes(32).toString('base64url')
    for (const f of deps.feeds) {
      this.byUri.set(f.uri, f)
      this.byFingerprint.set(f.defaults.fingerprint, f.defaults)
    }
  }

  feed(uri: string): Feed | undefined {
    return this.byUri.get(uri)
  }

  /** Finds a hosted feed by its record key, whatever DID the URI names (used when no publisher is configured). */
  feedByRkey(rkey: string): Feed | undefined {
    return this.feeds.find((f) => f.rkey === rkey)
  }

  /** The mix that applies to a reader: their saved one (else the feed's default), nudged by their feedback. */
  mixFor(feed: Feed, subscriber: string | null, now = Date.now(), interests: readonly string[] = []): Effective {
    if (!subscriber) {
      let anon = this.anonymous.get(feed.uri)
      if (!anon) this.anonymous.set(feed.uri, (anon = { mix: feed.defaults, base: feed.defaults.agents, nudges: feed.defaults.agents.map(() => 0), signature: '', at: 0 }))
      return anon
    }
    const key = `${subscriber} ${feed.uri}`
    const signature = `${this.d.interactions?.signature(subscriber, feed.uri) ?? ''}|${this.d.mixes.version(subscriber, feed.uri)}|${interests.join(',')}`
    const hit = this.effective.get(key)
    if (hit && hit.signature === signature && now - hit.at < NUDGE_RECHECK_MS) return hit
    const stored = this.d.mixes.effective(subscriber, feed.uri)
    let base = feed.defaults.agents
    let mix = feed.defaults
    if (stored) {
      const own = this.resolve(feed, stored.agents)
      if (own) {
        base = stored.agents
        mix = own
      }
    }
    // the interests the reader's app forwards: a cold start for readers without a mix, or a `topics` entry left empty
    const interested = withInterests(base, interests, mix !== feed.defaults)
    if (interested !== base) {
      const withTopics = this.resolve(feed, interested)
      if (withTopics) {
        base = interested
        mix = withTopics
      }
    }
    let nudges = base.map(() => 0)
    const acts = this.d.interactions?.active(subscriber, feed.uri, now) ?? []
    if (acts.some((a) => strengthOf(a.event) !== 0)) {
      const labels = new Map(base.map((_, i) => [mix.entries[i].label, i]))
      const applied = applyNudges(base, labels, acts, now)
      if (applied.deltas.some((d) => d !== 0)) {
        const nudged = this.resolve(feed, applied.entries)
        if (nudged) {
          mix = nudged
          nudges = applied.deltas
        }
      }
    }
    // @NOTE whatever the reader was given (their own mix, a record's, with interests or nudges) is theirs to have explained
    if (mix !== feed.defaults) {
      const owners = this.ownMixes.get(mix.fingerprint) ?? remember(this.ownMixes, mix.fingerprint, new Set<string>())
      if (owners.size < 100) owners.add(subscriber)
    }
    return remember(this.effective, key, { mix, stored, base, nudges, signature, at: now, feedback: acts.length > 0 })
  }

  private resolve(feed: Feed, agents: MixEntry[]): ResolvedMix | null {
    const key = `${feed.uri} ${canonicalJson(agents)}`
    const hit = this.resolved.get(key)
    if (hit) return hit
    try {
      const mix = resolveMix(this.d.host, agents, feed.base)
      remember(this.byFingerprint, mix.fingerprint, mix)
      return remember(this.resolved, key, mix)
    } catch (err) {
      // an agent was removed or changed its options since the mix was saved: fall back to the default
      this.d.log.warn({ feed: feed.rkey, err: (err as Error).message }, 'saved mix no longer valid; using default')
      return null
    }
  }

  /** One page of a reader's feed. */
  skeleton(feed: Feed, subscriber: string | null, limit: number, cursor?: string, interests: readonly string[] = []): Skeleton {
    if (subscriber) this.d.onReader?.(subscriber)
    let snapshot: number
    let after = 0
    let items: CacheItem[] | null
    if (cursor) {
      const c = decodeCursor(cursor)
      if (!c) throw new BadCursorError('malformed cursor')
      snapshot = c.snapshot
      after = c.rank
      // @NOTE an expired snapshot ends paging rather than restarting it, so nothing repeats
      const bound = this.d.cache.snapshotKey(snapshot)
      if (!bound) return { feed: [] }
      if (bound.feed !== feed.uri || !verifyCursor(this.cursorSecret, c, { feed: feed.uri, list: bound.key, reader: subscriber })) {
        throw new BadCursorError('cursor not valid for this feed and reader')
      }
      items = this.d.cache.pageOf(snapshot, after, limit)
      if (!items) return { feed: [] }
    } else {
      const first = () => {
        const e = this.mixFor(feed, subscriber, Date.now(), interests)
        const shared = this.current(feed, e.mix, subscriber)
        return subscriber && e.feedback ? this.personal(feed, shared, listKey(e.mix, subscriber), subscriber, e.signature).id : shared.id
      }
      snapshot = first()
      items = this.d.cache.pageOf(snapshot, 0, limit)
      if (!items) {
        // the newest snapshot remembered was removed meanwhile (retention): look again
        this.d.cache.forgetLatest()
        this.overlays.clear()
        snapshot = first()
        items = this.d.cache.page(snapshot, 0, limit)
      }
    }
    const filtered = this.allowed(snapshot, items, subscriber, limit)
    const view = this.viewOf(filtered.items)
    this.d.onServed?.(view.contexts)
    const out: Skeleton = { feed: view.feed }
    if (filtered.nextAfter !== null) {
      const bound = this.d.cache.snapshotKey(snapshot)
      if (bound) out.cursor = encodeCursor(this.cursorSecret, { snapshot, rank: filtered.nextAfter }, { feed: feed.uri, list: bound.key, reader: subscriber })
    }
    return out
  }

  /**
   * A page less the posts the reader may not be shown (consent, blocks),
   * filled from further down the list. `nextAfter`: the rank the next page
   * starts after, or null at the end of the list.
   */
  private allowed(snapshot: number, items: CacheItem[], subscriber: string | null, limit: number): { items: CacheItem[]; nextAfter: number | null } {
    const ok = this.d.readerFilter?.pageFilter(subscriber)
    if (!ok || items.every((i) => ok(i.postUri))) return { items, nextAfter: items.length === limit ? items[items.length - 1].rank : null }
    // @NOTE the AppView does not refill a page it filtered, so a page short of blocked authors would end short
    const out = items.filter((i) => ok(i.postUri))
    let last = items
    for (let round = 0; out.length < limit && last.length === limit && round < MAX_FILL_ROUNDS; round++) {
      last = this.d.cache.pageOf(snapshot, last[last.length - 1].rank, limit) ?? []
      for (const i of last) if (ok(i.postUri)) out.push(i)
    }
    if (out.length >= limit) return { items: out.slice(0, limit), nextAfter: out[limit - 1].rank }
    // a short page: the list ended, or the rounds ran out first (then the next page goes on from the last post looked at)
    return { items: out, nextAfter: last.length === limit ? last[last.length - 1].rank : null }
  }

  /** Notes a signed-in reader seen outside a feed request (web sign-in). */
  readerSeen(did: string): void {
    this.d.onReader?.(did)
  }

  /**
   * Rebuilds the reader's personal lists (their graph changed: a backfill
   * landed). Lists shared by a mix are not the reader's own; pages of
   * those are filtered as they are served.
   */
  rebuildFor(did: string): number {
    let n = 0
    for (const feed of this.feeds) {
      const { mix } = this.mixFor(feed, did)
      if (!mix.personal) continue
      this.refreshLater(feed, mix, did, Date.now(), true)
      n++
    }
    return n
  }

  /**
   * A page as the JSON of a getFeedSkeleton response, with its request id.
   * The items' JSON is made once per cached page (they are immutable), so a
   * request serializes only the cursor and the id.
   */
  skeletonJson(page: Skeleton, reqId: string): string {
    let items = this.feedJsons.get(page.feed)
    if (items === undefined) this.feedJsons.set(page.feed, (items = JSON.stringify(page.feed)))
    return `{"feed":${items}${page.cursor === undefined ? '' : `,"cursor":${JSON.stringify(page.cursor)}`},"reqId":${JSON.stringify(reqId)}}`
  }

  /** A page as served (pages are cached and immutable, so their views are too); callers must not change them. */
  private viewOf(items: CacheItem[]): { feed: SkeletonItem[]; contexts: string[] } {
    let v = this.views.get(items)
    if (!v) this.views.set(items, (v = { feed: items.map((i) => ({ post: i.postUri, feedContext: i.context })), contexts: items.map((i) => i.context) }))
    return v
  }

  /**
   * The reader's overlay of a shared list, stored as its own snapshot so
   * paging stays consistent; rebuilt when the shared list or the reader's
   * feedback changes. Readers without feedback read the shared list.
   */
  private personal(feed: Feed, shared: SnapshotInfo, key: string, subscriber: string, signature: string): SnapshotInfo {
    if (!this.d.interactions) return shared
    // @NOTE the overlay is named by the shared list and the reader's feedback signature: one already made needs no read
    // of the reader's interactions
    const okey = `${key}~${shortHash(subscriber, 10)}~${shared.id}~${shortHash(signature, 8)}`
    const rkey = `${subscriber} ${feed.uri}`
    const have = this.d.cache.latest(feed.uri, okey)
    if (have) {
      remember(this.overlays, rkey, { key, signature, snap: have })
      return have
    }
    if (this.noOverlay.has(okey)) return shared
    const last = this.overlays.get(rkey)
    if (last && last.key === key && last.signature === signature) {
      // @NOTE only the shared list changed: the reader's order of the list before is served, as a stale list is, and the
      // new one is made after this response (feedback, which changes the signature, still applies at once)
      if (!this.making.has(okey)) {
        this.making.add(okey)
        setImmediate(() => {
          try {
            this.makeOverlay(feed, shared, key, okey, subscriber, signature)
          } catch (err) {
            this.d.log.warn({ err: (err as Error).message, feed: feed.rkey }, 'overlay not made')
          } finally {
            this.making.delete(okey)
          }
        })
      }
      return last.snap
    }
    return this.makeOverlay(feed, shared, key, okey, subscriber, signature)
  }

  /** Makes and stores a reader's overlay of a shared list (or returns the shared list when no feedback counts). */
  private makeOverlay(feed: Feed, shared: SnapshotInfo, key: string, okey: string, subscriber: string, signature: string): SnapshotInfo {
    const acts = this.d.interactions!.active(subscriber, feed.uri)
    if (!acts.length) {
      // only undone or expired ones: nothing to lay over the shared list until the feedback changes
      remember(this.noOverlay, okey, true)
      return shared
    }
    const t0 = performance.now()
    const state = overlayState(acts, Date.now())
    const contextOf = new Map(acts.map((a) => [a.postUri, a.feedContext]))
    const live = this.d.cache.storedList(shared.id)
    const items = overlay<ListItem>(live.items, state, (uri) =>
      this.d.cache.postExists(uri) ? { uri, score: 0, context: contextOf.get(uri) ?? `v1|${shortHash(key, 16)}||${feed.rkey}` } : null,
    )
    const snap = this.d.cache.store(feed, okey, items, Date.now(), performance.now() - t0, live.checkedAt)
    remember(this.overlays, `${subscriber} ${feed.uri}`, { key, signature, snap })
    return snap
  }

  /** The newest shared list for a mix (and reader, for personal mixes); built now if there is none, refreshed in the background if stale. */
  current(feed: Feed, mix: ResolvedMix, subscriber: string | null = null, now = Date.now()): SnapshotInfo {
    const key = listKey(mix, subscriber)
    const snap = this.d.cache.latest(feed.uri, key)
    if (!snap) {
      this.d.onCacheLookup?.('miss')
      const built = this.build(feed, mix, subscriber, now)
      // @NOTE ranked here without the agents this process may not run (sandboxed ones): a refresh worker completes the list
      if (!this.d.cache.ranksFully(mix)) this.refreshLater(feed, mix, subscriber, now, true)
      return built
    }
    // @NOTE a short list (built before the posts came, say) is rebuilt at once when posts were stored since it was
    // built: served until its TTL, it would show readers an empty or near-empty feed while there is more to show
    if (snap.size < SHORT_LIST && now - snap.builtAt >= SHORT_LIST_REBUILD_MS && this.d.cache.newestPostAt(now) > snap.builtAt) {
      this.d.onCacheLookup?.('stale')
      const built = this.build(feed, mix, subscriber, now)
      if (!this.d.cache.ranksFully(mix)) this.refreshLater(feed, mix, subscriber, now, true)
      return built
    }
    const stale = now - snap.builtAt > this.d.cacheTtlMs
    this.d.onCacheLookup?.(stale ? 'stale' : 'fresh')
    if (stale) this.refreshLater(feed, mix, subscriber, now)
    return snap
  }

  /** Builds a list now (also what refresh workers call). */
  build(feed: Feed, mix: ResolvedMix, subscriber: string | null, now = Date.now()): SnapshotInfo {
    const personal = mix.personal && subscriber !== null
    return this.d.cache.build(feed, mix, now, { key: listKey(mix, subscriber), subscriber: personal && this.d.graph ? this.d.graph.context(subscriber) : undefined })
  }

  private refreshLater(feed: Feed, mix: ResolvedMix, subscriber: string | null, now: number, complete = false): void {
    const key = `${feed.uri} ${listKey(mix, subscriber)}`
    const last = this.refreshing.get(key) ?? 0
    if (!complete && now - last < this.d.cacheTtlMs) return
    remember(this.refreshing, key, now)
    // @NOTE a list still read keeps its instances among those score workers pre-compute (they keep the most recently registered)
    this.d.registerInstances?.(mix).catch((err) => this.d.log.debug({ err: (err as Error).message }, 'could not register agent instances again'))
    const inline = () => {
      setImmediate(() => {
        try {
          this.build(feed, mix, subscriber)
        } catch (err) {
          this.d.log.error({ err, feed: feed.rkey }, 'inline refresh failed')
        }
      })
    }
    if (!this.d.requestRefresh) return inline()
    this.d.requestRefresh(feed, mix, mix.personal ? subscriber : null, { complete }).catch((err) => {
      // Redis is unreachable: refresh here so the list still follows the posts
      this.d.log.warn({ err: (err as Error).message, feed: feed.rkey }, 'refresh queue unreachable; refreshing inline')
      inline()
    })
  }

  /** What getMix answers. */
  viewMix(feed: Feed, subscriber: string): MixView {
    const e = this.mixFor(feed, subscriber)
    if (e.stored) {
      return { feed: feed.uri, agents: e.stored.agents, source: e.stored.source, fingerprint: e.mix.fingerprint, updatedAt: e.stored.updatedAt, nudges: e.nudges }
    }
    return { feed: feed.uri, agents: e.base, source: 'default', fingerprint: e.mix.fingerprint, nudges: e.nudges }
  }

  /** Every feed where the reader has a saved mix. */
  listMixes(subscriber: string): MixView[] {
    return this.feeds.filter((f) => this.d.mixes.effective(subscriber, f.uri)).map((f) => this.viewMix(f, subscriber))
  }

  /** Validates and saves a private mix (throws FieldError naming the bad field). */
  async putMix(feed: Feed, subscriber: string, agents: unknown): Promise<MixView> {
    const mix = resolveMix(this.d.host, agents, feed.base)
    this.d.onReader?.(subscriber)
    this.d.mixes.put({ subscriber, feed: feed.uri, source: 'private', agents: mix.agents, fingerprint: mix.fingerprint })
    remember(this.byFingerprint, mix.fingerprint, mix)
    await this.d.registerInstances?.(mix).catch((err) => this.d.log.warn({ err: (err as Error).message }, 'could not register agent instances; they are scored at refresh'))
    return this.viewMix(feed, subscriber)
  }

  /** Forgets the reader's private mix (a public record, if any, then applies). */
  deleteMix(feed: Feed, subscriber: string): boolean {
    return this.d.mixes.delete(subscriber, feed.uri, 'private')
  }

  /**
   * The first page a mix would produce for this reader, without saving or
   * keeping anything: ranked over the newest SKYSIFT_PREVIEW_CANDIDATES
   * candidates, one preview at a time, taking at most about half of the
   * event loop while other requests wait. Rejects with QueueFullError when
   * SKYSIFT_PREVIEW_QUEUE previews already wait, and with FieldError for a bad mix.
   */
  async previewMix(feed: Feed, subscriber: string | null, agents: unknown, limit: number): Promise<{ feed: SkeletonItem[]; fingerprint: string }> {
    const mix = resolveMix(this.d.host, agents, feed.base, { keep: false })
    return this.previews.run(async () => {
      const ctx = mix.personal && subscriber && this.d.graph ? this.d.graph.context(subscriber) : undefined
      let stepAt = performance.now()
      const pause = async () => {
        // @NOTE previews take at most about half of the event loop: after each step a rest as long (short steps only yield)
        const busy = performance.now() - stepAt
        await (busy < 1 ? yieldToLoop() : new Promise((resolve) => setTimeout(resolve, Math.min(busy, PREVIEW_MAX_REST_MS))))
        stepAt = performance.now()
      }
      const items = await this.d.cache.preview(feed, mix, { limit, maxCandidates: this.d.previewCandidates ?? PREVIEW_DEFAULTS.candidates, pause, subscriber: ctx })
      return { feed: items.map((i) => ({ post: i.uri, feedContext: i.context })), fingerprint: mix.fingerprint }
    })
  }

  /** Remembers which feed a response went to, so feedback that names only the request id finds its feed. */
  noteRequest(reqId: string, feed: Feed): void {
    remember(this.requests, reqId, feed.uri)
  }

  /** Stores feedback; the reader's next first page reflects it. Items whose feed cannot be told are skipped. */
  addFeedback(subscriber: string, items: { postUri: string; event: FeedbackEvent; feedContext: string | null; reqId: string | null }[], feedUri?: string): number {
    if (!this.d.interactions) return 0
    // @NOTE the item's own feedContext says best which list it came from; then the request's `feed`, then its reqId
    const named = feedUri ? this.byUri.get(feedUri) : undefined
    const withFeed = items.flatMap((i) => {
      const rkey = i.feedContext ? decodeFeedContext(i.feedContext)?.feed : undefined
      // @NOTE a request another serving process answered is not remembered here: its id names its feed
      const viaReq = i.reqId ? (this.requests.get(i.reqId) ?? this.feeds[feedIndexOf(i.reqId) ?? -1]?.uri) : undefined
      const feed = rkey ? this.feedByRkey(rkey) : named ? named : viaReq ? this.byUri.get(viaReq) : this.feeds.length === 1 ? this.feeds[0] : undefined
      return feed ? [{ ...i, feed: feed.uri }] : []
    })
    return this.d.interactions.add(subscriber, withFeed)
  }

  /** The reader's recent "more"/"less" for a feed, with the nudges each one made to the reader's own agents. */
  feedback(feed: Feed, subscriber: string, limit = 50): FeedbackView[] {
    const { mix, base } = this.mixFor(feed, subscriber)
    const own = new Set(base.map((_, i) => mix.entries[i].label))
    return (this.d.interactions?.recent(subscriber, feed.uri, limit) ?? []).map((i) => ({ ...i, nudges: nudgesOf(i).filter((n) => own.has(n.label)) }))
  }

  undoFeedback(subscriber: string, id: number): StoredInteraction | null {
    return this.d.interactions?.undo(subscriber, id) ?? null
  }

  /**
   * "Why am I seeing this": an item's attribution in plain language; null
   * when it is not ours, or names a known mix that is neither a feed's
   * default nor the requester's own (a private mix's options are only
   * explained to its reader). A mix known to no one here (a preview's) is
   * explained by its agents' names alone.
   */
  explain(feedContext: string, requester: string | null): Explanation | null {
    const a = decodeFeedContext(feedContext)
    if (!a) return null
    const fp = a.fingerprint
    let mix: ResolvedMix | undefined
    if (this.explainable(fp, a.feed, requester)) mix = this.byFingerprint.get(fp) ?? this.mixByFingerprint(fp)
    else if (this.byFingerprint.has(fp) || this.ownMixes.has(fp) || this.d.mixes.byFingerprint(fp)) return null
    const agents = this.d.host.agents
    return explain(a, (label) => {
      const e = mix?.entries.find((x) => x.label === label)
      const id = e?.inst.def.id ?? label.replace(/#\d+$/, '')
      const def = agents.get(id)
      if (!def) return null
      return { agent: id, title: def.title, options: e?.inst.rawOptions }
    })
  }

  /** Whether a mix fingerprint may be explained to the requester: a feed's default, or a mix of their own. */
  private explainable(fp: string, rkey: string | undefined, requester: string | null): boolean {
    if (this.feeds.some((f) => f.defaults.fingerprint === fp)) return true
    if (!requester) return false
    if (this.ownMixes.get(fp)?.has(requester)) return true
    const feeds = rkey ? this.feeds.filter((f) => f.rkey === rkey) : this.feeds
    return feeds.some((f) => {
      const e = this.mixFor(f, requester)
      return e.mix.fingerprint === fp || e.stored?.fingerprint === fp
    })
  }

  private mixByFingerprint(fp: string): ResolvedMix | undefined {
    const stored = this.d.mixes.byFingerprint(fp)
    if (!stored) return undefined
    const feed = this.byUri.get(stored.feed)
    return (feed && this.resolve(feed, stored.agents)) || undefined
  }
}

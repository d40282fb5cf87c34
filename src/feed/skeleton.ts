import { randomBytes } from 'node:crypto'
import type { Feed } from '../feeds.ts'
import { decodeCursor, encodeCursor, verifyCursor } from '../rank/cursor.ts'
import { overlay, overlayState } from '../rank/feedback.ts'
import type { ResolvedMix } from '../rank/mix.ts'
import type { ListItem, SnapshotInfo } from '../store/snapshots.ts'
import { shortHash } from '../util/canonical.ts'
import type { FeedServiceDeps } from './deps.ts'
import { remember, type Mixes } from './mixes.ts'
import type { CacheItem } from './snapshot-pages.ts'

/** An item of a feed page as served: the post and its feedContext (attribution). */
export interface SkeletonItem {
  post: string
  feedContext: string
}

/** A feed page as served, with the cursor to the next one. */
export interface Skeleton {
  feed: SkeletonItem[]
  cursor?: string
}

/** A cursor that is malformed, or not valid for the feed and reader it came with. */
export class BadCursorError extends Error {}

/** Further reads of a list to fill a page the reader's filter thinned (each reads up to a page). */
export const MAX_FILL_ROUNDS = 8

/** The cache key of a list: the mix fingerprint, plus the reader for personal mixes. */
export function listKey(mix: ResolvedMix, subscriber: string | null): string {
  return mix.personal && subscriber ? `${mix.fingerprint}.${shortHash(subscriber, 12)}` : mix.fingerprint
}

/** A list shorter than a default page counts as short: it is rebuilt as soon as posts arrive (see current()). */
export const SHORT_LIST = 50
/** A short list is rebuilt at most this often while posts keep arriving. */
export const SHORT_LIST_REBUILD_MS = 2000

/**
 * Serving a feed: whose mix applies (with their feedback's nudges) → which
 * stored list (built now if missing, refreshed in the background when
 * stale) → the reader's own overlay of it (asked-for items first, waved-off
 * ones gone, seen ones lower) → a page, filled past the posts the reader
 * may not be shown, with a signed cursor to the next.
 */
export class Skeletons {
  private readonly d: FeedServiceDeps
  private readonly mixes: Mixes
  private readonly refreshing = new Map<string, number>()
  private readonly views = new WeakMap<CacheItem[], { feed: SkeletonItem[]; contexts: string[] }>()
  private readonly feedJsons = new WeakMap<SkeletonItem[], string>()
  /** overlay keys whose reader has no active interaction (so the shared list is served) */
  private readonly noOverlay = new Map<string, true>()
  private readonly cursorSecret: string
  /** per reader and feed: the overlay last made and the feedback signature it was made for */
  private readonly overlays = new Map<string, { key: string; signature: string; snap: SnapshotInfo }>()
  /** overlays being made after a response */
  private readonly making = new Set<string>()

  constructor(deps: FeedServiceDeps, mixes: Mixes) {
    this.d = deps
    this.mixes = mixes
    this.cursorSecret = deps.cursorSecret ?? randomBytes(32).toString('base64url')
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
      const bound = this.d.pages.snapshotKey(snapshot)
      if (!bound) return { feed: [] }
      if (bound.feed !== feed.uri || !verifyCursor(this.cursorSecret, c, { feed: feed.uri, list: bound.key, reader: subscriber })) {
        throw new BadCursorError('cursor not valid for this feed and reader')
      }
      items = this.d.pages.pageOf(snapshot, after, limit)
      if (!items) return { feed: [] }
    } else {
      snapshot = this.place(feed, subscriber, interests).id
      items = this.d.pages.pageOf(snapshot, 0, limit)
      if (!items) {
        // the newest snapshot remembered was removed meanwhile (retention): look again
        this.d.pages.forgetLatest()
        this.overlays.clear()
        snapshot = this.place(feed, subscriber, interests).id
        items = this.d.pages.page(snapshot, 0, limit)
      }
    }
    const filtered = this.allowed(snapshot, items, subscriber, limit)
    const view = this.viewOf(filtered.items)
    this.d.onServed?.(view.contexts)
    const out: Skeleton = { feed: view.feed }
    if (filtered.nextAfter !== null) {
      const bound = this.d.pages.snapshotKey(snapshot)
      if (bound) out.cursor = encodeCursor(this.cursorSecret, { snapshot, rank: filtered.nextAfter }, { feed: feed.uri, list: bound.key, reader: subscriber })
    }
    return out
  }

  /**
   * The snapshot a reader's first page is read from: the mix that applies →
   * its current list (built when missing, a refresh asked when stale) → the
   * reader's overlay of it when their feedback counts. `quiet`: a look that
   * is no reader's request (counted in no cache metric, asks no refresh of a
   * stale list; a missing list is still built).
   */
  place(feed: Feed, subscriber: string | null, interests: readonly string[] = [], now = Date.now(), opts: { quiet?: boolean } = {}): SnapshotInfo {
    const e = this.mixes.mixFor(feed, subscriber, now, interests)
    const shared = this.current(feed, e.mix, subscriber, now, opts.quiet)
    return subscriber && e.feedback ? this.personal(feed, shared, listKey(e.mix, subscriber), subscriber, e.signature) : shared
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
      last = this.d.pages.pageOf(snapshot, last[last.length - 1].rank, limit) ?? []
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
    for (const feed of this.d.feeds) {
      const { mix } = this.mixes.mixFor(feed, did)
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
    const have = this.d.pages.latest(feed.uri, okey)
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
    const live = this.d.pages.storedList(shared.id)
    const items = overlay<ListItem>(live.items, state, (uri) =>
      this.d.pages.postExists(uri) ? { uri, score: 0, context: contextOf.get(uri) ?? `v1|${shortHash(key, 16)}||${feed.rkey}` } : null,
    )
    const snap = this.d.pages.store(feed, okey, items, Date.now(), performance.now() - t0, live.checkedAt)
    remember(this.overlays, `${subscriber} ${feed.uri}`, { key, signature, snap })
    return snap
  }

  /** The newest shared list for a mix (and reader, for personal mixes); built now if there is none, refreshed in the background if stale. */
  current(feed: Feed, mix: ResolvedMix, subscriber: string | null = null, now = Date.now(), quiet = false): SnapshotInfo {
    const key = listKey(mix, subscriber)
    const snap = this.d.pages.latest(feed.uri, key)
    if (!snap) {
      if (!quiet) this.d.onCacheLookup?.('miss')
      const built = this.build(feed, mix, subscriber, now)
      // @NOTE ranked here without the agents this process may not run (sandboxed ones): a refresh worker completes the list
      if (!this.d.lists.ranksFully(mix)) this.refreshLater(feed, mix, subscriber, now, true)
      return built
    }
    // @NOTE a short list (built before the posts came, say) is rebuilt at once when posts were stored since it was
    // built: served until its TTL, it would show readers an empty or near-empty feed while there is more to show
    if (snap.size < SHORT_LIST && now - snap.builtAt >= SHORT_LIST_REBUILD_MS && this.d.pages.newestPostAt(now) > snap.builtAt) {
      if (!quiet) this.d.onCacheLookup?.('stale')
      const built = this.build(feed, mix, subscriber, now)
      if (!this.d.lists.ranksFully(mix)) this.refreshLater(feed, mix, subscriber, now, true)
      return built
    }
    if (quiet) return snap
    const stale = now - snap.builtAt > this.d.cacheTtlMs
    this.d.onCacheLookup?.(stale ? 'stale' : 'fresh')
    if (stale) this.refreshLater(feed, mix, subscriber, now)
    return snap
  }

  /** Builds a list now (also what refresh workers call). */
  build(feed: Feed, mix: ResolvedMix, subscriber: string | null, now = Date.now()): SnapshotInfo {
    const personal = mix.personal && subscriber !== null
    return this.d.lists.build(feed, mix, now, {
      key: listKey(mix, subscriber),
      subscriber: personal && this.d.graph ? this.d.graph.context(subscriber) : undefined,
    })
  }

  private refreshLater(feed: Feed, mix: ResolvedMix, subscriber: string | null, now: number, complete = false): void {
    const key = `${feed.uri} ${listKey(mix, subscriber)}`
    const last = this.refreshing.get(key) ?? 0
    if (!complete && now - last < this.d.cacheTtlMs) return
    remember(this.refreshing, key, now)
    // @NOTE a list still read keeps its instances among those score workers pre-compute (they keep the most recently registered)
    this.d.instances?.register(mix).catch((err) => this.d.log.debug({ err: (err as Error).message }, 'could not register agent instances again'))
    const inline = () => {
      setImmediate(() => {
        try {
          this.build(feed, mix, subscriber)
        } catch (err) {
          this.d.log.error({ err, feed: feed.rkey }, 'inline refresh failed')
        }
      })
    }
    if (!this.d.refreshQueue) return inline()
    this.d.refreshQueue.request(feed, mix, mix.personal ? subscriber : null, { complete }).catch((err) => {
      // Redis is unreachable: refresh here so the list still follows the posts
      this.d.log.warn({ err: (err as Error).message, feed: feed.rkey }, 'refresh queue unreachable; refreshing inline')
      inline()
    })
  }
}

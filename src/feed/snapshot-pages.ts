import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { ListItem, SnapshotInfo, StoredItem } from '../store/snapshots.ts'
import type { SnapshotStore } from './ports.ts'

/** An item of a page as served: its rank in the snapshot (1 and up), the post and its feedContext. */
export interface CacheItem {
  rank: number
  postUri: string
  context: string
}

/** What SnapshotPages keep in memory, shared by every SnapshotPages on one store (one connection). */
interface Memory {
  /** the newest snapshot per (feed, key), as read at `at` */
  latest: Map<string, { at: number; snap: SnapshotInfo | undefined }>
  /** pages served, with the post_deletions row they were checked against */
  pages: Map<string, { checked: number; items: CacheItem[] }>
  /** the feed and list key of snapshots (see snapshotKey) */
  snapshotKeys: Map<number, { feed: string; key: string }>
  /** snapshots' items as parsed (least recently used first) */
  snapshots: Map<number, StoredItem[]>
  /** items in `snapshots` */
  parsedItems: number
  /** URIs of posts deleted (post_deletions rows read by this connection), with their row */
  deleted: Map<string, number>
  /** the post_deletions row `deleted` is current with (-1: not read yet) */
  deletionSeq: number
  /** what the last probe read, when: the newest post_deletions row, and which snapshots exist (see RECHECK_MS) */
  probed: { at: number; lastDeletion: number; live: Map<number, boolean>; localDeletions: number }
}

const memories = new WeakMap<SnapshotStore, Memory>()

/** How long latest() trusts what it read: another process's new snapshot is seen this much later at most (this process's at once). */
export const LATEST_TTL_MS = 1000
/**
 * How long a served page trusts the last look at the store: a post deleted (or a snapshot removed) is left out of
 * pages at most this much later. One look per interval instead of one statement per request.
 */
export const RECHECK_MS = 20

/** How long newestPostAt() answers from memory. */
const NEWEST_POST_MS = 250
const MAX_PAGES = 20_000
const MAX_LATEST = 50_000
const MAX_PARSED_SNAPSHOTS = 64
/** items of parsed snapshots kept at most (a snapshot holds up to SKYSIFT_CACHE_SIZE) */
const MAX_PARSED_ITEMS = 100_000
/** deleted URIs remembered per connection; past this they are forgotten and every cached page is checked again */
const MAX_DELETED = 200_000
/** A snapshot superseded less than this long ago is kept: other processes may still take it for the newest (LATEST_TTL_MS). */
const SUPERSEDED_KEEP_MS = 60_000

/**
 * Ranked lists per (feed, list key), stored as numbered snapshots: a
 * refresh stores a new snapshot and leaves the old ones for a while, so a
 * reader paging through an older snapshot sees a consistent list, less any
 * post deleted since (read from `post_deletions`).
 *
 * In memory (per store): served pages, checked against the deletions
 * logged since they were read; parsed snapshots; and the newest snapshot
 * per list for LATEST_TTL_MS.
 */
export class SnapshotPages {
  private readonly snapshots: SnapshotStore
  private readonly log: Logger
  private readonly snapshotTtlMs: number
  private readonly recheckMs: number
  private readonly mem: Memory
  private readonly newest = { askedAt: -Infinity, value: 0 }

  constructor(store: SnapshotStore, log: Logger, opts: { snapshotTtlMs: number; recheckMs?: number }) {
    this.snapshots = store
    this.log = log
    this.snapshotTtlMs = opts.snapshotTtlMs
    this.recheckMs = opts.recheckMs ?? RECHECK_MS
    let mem = memories.get(store)
    if (!mem) {
      mem = {
        latest: new Map(),
        pages: new Map(),
        snapshotKeys: new Map(),
        snapshots: new Map(),
        parsedItems: 0,
        deleted: new Map(),
        deletionSeq: -1,
        probed: { at: -Infinity, lastDeletion: 0, live: new Map(), localDeletions: 0 },
      }
      memories.set(store, mem)
    }
    this.mem = mem
  }

  /** The newest snapshot of a list (as of at most LATEST_TTL_MS ago, or this process's own newest). */
  latest(feed: string, fingerprint: string, now = Date.now()): SnapshotInfo | undefined {
    const k = `${feed} ${fingerprint}`
    const hit = this.mem.latest.get(k)
    if (hit && now - hit.at < LATEST_TTL_MS) return hit.snap
    const snap = this.snapshots.latest(feed, fingerprint)
    if (this.mem.latest.size >= MAX_LATEST) this.mem.latest.clear()
    this.mem.latest.set(k, { at: now, snap })
    return snap
  }

  /** When the newest post was stored (ms since the epoch; 0 without posts), asked of the store at most every NEWEST_POST_MS. */
  newestPostAt(now = Date.now()): number {
    const newest = this.newest
    if (now - newest.askedAt >= NEWEST_POST_MS) {
      newest.askedAt = now
      newest.value = this.snapshots.newestPostAt()
    }
    return newest.value
  }

  /** The feed and list key a snapshot was built for; undefined when it is gone. (Ids are never reused: AUTOINCREMENT.) */
  snapshotKey(snapshot: number): { feed: string; key: string } | undefined {
    // @NOTE remembered once read: a snapshot's id names one list for good (a removed one is caught by pageOf)
    const keys = this.mem.snapshotKeys
    let k = keys.get(snapshot)
    if (k) return k
    k = this.snapshots.key(snapshot)
    if (!k) return undefined
    if (keys.size >= MAX_LATEST) keys.clear()
    keys.set(snapshot, k)
    return k
  }

  /** Forgets what latest() remembers (a snapshot it named is gone). */
  forgetLatest(): void {
    this.mem.latest.clear()
  }

  /** Up to `limit` items of a snapshot after `afterRank` ([] when the snapshot is gone). Callers must not change the items. */
  page(snapshot: number, afterRank: number, limit: number): CacheItem[] {
    return this.pageOf(snapshot, afterRank, limit) ?? []
  }

  /**
   * Like page(), but null when the snapshot no longer exists. Posts deleted
   * since the snapshot was built are left out (the page reaches further down
   * the list instead). Served from memory while no post of the page was
   * deleted: one statement tells both, asked at most once per RECHECK_MS
   * (per snapshot) however many requests come meanwhile.
   */
  pageOf(snapshot: number, afterRank: number, limit: number, now = performance.now()): CacheItem[] | null {
    const probed = this.mem.probed
    // @NOTE a deletion made through this connection is seen at once (the writer next to the server)
    const local = this.snapshots.deletionsLoggedHere()
    const fresh = now - probed.at < this.recheckMs && local === probed.localDeletions
    let live = fresh ? probed.live.get(snapshot) : undefined
    if (live === undefined) {
      const { exists, lastDeletion } = this.snapshots.probe(snapshot)
      if (!fresh) {
        probed.at = now
        probed.localDeletions = local
        probed.live.clear()
      }
      probed.lastDeletion = lastDeletion
      probed.live.set(snapshot, (live = exists))
    }
    if (!live) return null
    // @NOTE the read may reach past what the probe saw (a deletion committed in between): later requests in this
    // interval start from there, not from an older row, which syncDeletions would take for a reset log
    const checked = (probed.lastDeletion = this.syncDeletions(probed.lastDeletion))
    const k = `${snapshot}:${afterRank}:${limit}`
    const hit = this.mem.pages.get(k)
    if (hit) {
      if (hit.checked === checked) return hit.items
      if (!hit.items.some((it) => (this.mem.deleted.get(it.postUri) ?? -1) > hit.checked)) {
        hit.checked = checked
        return hit.items
      }
    }
    const stored = this.storedItems(snapshot)
    if (!stored) return null
    const items: CacheItem[] = []
    for (let i = Math.max(0, afterRank); i < stored.length && items.length < limit; i++) {
      const [uri, , context] = stored[i]
      // @NOTE the posts table decides (a post deleted and stored again, after its account came back, is shown);
      // deletions past `checked` are caught when the page is next served
      if (!this.snapshots.postExists(uri)) continue
      items.push({ rank: i + 1, postUri: uri, context })
    }
    if (this.mem.pages.size >= MAX_PAGES) this.mem.pages.clear()
    this.mem.pages.set(k, { checked, items })
    return items
  }

  /** Reads the deletions logged since this connection last looked; returns the row it is now current with. */
  private syncDeletions(last: number): number {
    const mem = this.mem
    if (last === mem.deletionSeq) return last
    const reset = () => {
      // first look, rows this connection never saw were trimmed, or too many to remember: pages read from here on
      // check every post
      mem.deleted.clear()
      mem.pages.clear()
      mem.deletionSeq = last
      return last
    }
    if (mem.deletionSeq < 0 || last < mem.deletionSeq || last - mem.deletionSeq + mem.deleted.size > MAX_DELETED) return reset()
    const rows = this.snapshots.deletionsSince(mem.deletionSeq)
    // @NOTE sequence numbers are contiguous (only the old end is ever trimmed): a first row past the next one means
    // retention trimmed rows this connection had not read
    if (rows.length && rows[0][0] !== mem.deletionSeq + 1) return reset()
    for (const [seq, uri] of rows) {
      mem.deleted.set(uri, seq)
      if (seq > mem.deletionSeq) mem.deletionSeq = seq
    }
    return mem.deletionSeq
  }

  /** A snapshot's stored items (parsed once, a few snapshots kept), or null when it is gone. */
  private storedItems(snapshot: number): StoredItem[] | null {
    const cache = this.mem.snapshots
    let items = cache.get(snapshot)
    if (items) {
      cache.delete(snapshot)
      cache.set(snapshot, items)
      return items
    }
    const json = this.snapshots.itemsJson(snapshot)
    if (json === undefined) return null
    items = JSON.parse(json) as StoredItem[]
    this.mem.parsedItems += items.length
    for (const [id, old] of cache) {
      if (cache.size < MAX_PARSED_SNAPSHOTS && this.mem.parsedItems <= MAX_PARSED_ITEMS) break
      cache.delete(id)
      this.mem.parsedItems -= old.length
    }
    cache.set(snapshot, items)
    return items
  }

  /**
   * Stores a ranked list as a new snapshot. `checkedAt`: the post_deletions
   * row the items were known live at (then only later deletions are looked
   * up); without it every item is looked up.
   */
  store(feed: Feed, key: string, items: ListItem[], now = Date.now(), buildMs = 0, checkedAt?: number): SnapshotInfo {
    const { id, size } = this.snapshots.insert(feed.uri, key, items, now, buildMs, checkedAt)
    this.log.debug({ feed: feed.rkey, key, size, buildMs }, 'feed snapshot stored')
    const snap = { id, builtAt: now, size, buildMs }
    this.mem.latest.set(`${feed.uri} ${key}`, { at: Date.now(), snap })
    if (this.mem.snapshotKeys.size >= MAX_LATEST) this.mem.snapshotKeys.clear()
    this.mem.snapshotKeys.set(id, { feed: feed.uri, key })
    return snap
  }

  /** Every item of a snapshot still live, in order. */
  items(snapshot: number): ListItem[] {
    const stored = this.storedItems(snapshot) ?? []
    return stored.filter(([uri]) => this.snapshots.postExists(uri)).map(([uri, score, context]) => ({ uri, score, context }))
  }

  /**
   * A snapshot's items as stored, and the post_deletions row read just before them. Posts deleted since the
   * snapshot was built may be among them: pages read from a snapshot leave those out (see pageOf), and store() given
   * the row leaves out the ones deleted after it. What a list made from another costs without a lookup per item.
   */
  storedList(snapshot: number): { items: ListItem[]; checkedAt: number } {
    // @NOTE read before the items: a deletion committed meanwhile has a later row, which store() reads
    const checkedAt = this.snapshots.lastDeletion()
    const stored = this.storedItems(snapshot) ?? []
    return { items: stored.map(([uri, score, context]) => ({ uri, score, context })), checkedAt }
  }

  /** storedList(), or null when the snapshot is gone. */
  storedListIfAny(snapshot: number): { items: ListItem[]; checkedAt: number } | null {
    const checkedAt = this.snapshots.lastDeletion()
    const stored = this.storedItems(snapshot)
    return stored && { items: stored.map(([uri, score, context]) => ({ uri, score, context })), checkedAt }
  }

  /** Whether a post is live (stored, its author not hiding from algorithmic feeds). */
  postExists(uri: string): boolean {
    return this.snapshots.postExists(uri)
  }

  /** Deletes snapshots older than the TTL, keeping the newest of each list. */
  prune(now = Date.now()): number {
    const n = this.snapshots.prune(now - this.snapshotTtlMs, now - SUPERSEDED_KEEP_MS)
    if (n) this.mem.probed.at = -Infinity
    return n
  }
}

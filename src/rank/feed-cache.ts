import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import { DEFAULT_MAX_INSTANCES, type AgentHost, type AgentInstance } from '../score/host.ts'
import { DROP, scoresColumns, type AgentPost, type PostColumns, type Score, type SubscriberContext } from '../score/sdk.ts'
import type { Sqlite } from '../store/db.ts'
import { deletionsLoggedHere } from '../store/post-log.ts'
import { ReaderFilter } from '../store/reader-filter.ts'
import { withoutAuthors } from './exclude-authors.ts'
import { encodeFeedContext } from './feed-context.ts'
import type { ResolvedMix } from './mix.ts'
import { DROP_CODE, rankCandidates, type ScoreColumn } from './rank.ts'

export interface SnapshotInfo {
  id: number
  builtAt: number
  size: number
  buildMs: number
}

/** A ranked item before it is stored. */
export interface ListItem {
  uri: string
  score: number
  context: string
}

export interface CacheItem {
  rank: number
  postUri: string
  context: string
}

/** A post as ranking keeps it in memory: immutable for its id, apart from the counts (kept current by the change log). */
interface CachedPost {
  id: number
  post: AgentPost
  /**
   * static scores by instance slot (Shared.slots): a number; null = drop; NaN = none stored (the agent had no
   * opinion: it is asked again every build, as a post without a stored score always was); undefined = not looked up
   */
  scores: (number | null | undefined)[]
  /** the build that last used it (older ones are evicted) */
  used: number
  /** how many candidate lists hold it (a post in a list is never evicted: the list keeps its counts current) */
  refs: number
}

/**
 * The newest `max` posts of one window (a feed's windowHours), newest first, kept current from the change log
 * (`post_changes`): a build reads what changed since the list's `seq` instead of every candidate again.
 */
interface CandidateList {
  max: number
  items: CachedPost[]
  ids: Set<number>
  /** the post_changes row the list is current with */
  seq: number
  /**
   * the list held `max` posts when last filled or trimmed: older posts of the window may exist past its tail.
   * When false the list holds every post of the window, so every new post of the window joins it and a deletion
   * leaves nothing to take up.
   */
  full: boolean
  usedAt: number
  /**
   * static scores by instance slot, aligned with `items` (read up to items.length), encoded as ranking reads them
   * (encodeScores) plus NOT_LOOKED_UP: kept in step with the items, so a build reads them without touching every post;
   * and under TIME, LIKES and REPOSTS (once an agent scored columns from them) the posts' createdAt and current counts
   */
  cols: Map<number, Float64Array>
}

/** Slots of a list's columns that hold the posts' own figures (agents' slots are 0 and up). */
const TIME = -1
const LIKES = -2
const REPOSTS = -3

/** In a list's column: the post's stored scores were not read yet. */
const NOT_LOOKED_UP = Infinity

/** A cached post's static score for a slot, as a list's column holds it. */
function columnCode(v: number | null | undefined): number {
  return v === undefined ? NOT_LOOKED_UP : v === null ? DROP_CODE : v
}

/** What a list's column holds for a post: its static score for an agent's slot, or its own figure (TIME, LIKES, REPOSTS). */
function cellOf(c: CachedPost, slot: number): number {
  if (slot >= 0) return columnCode(c.scores[slot])
  return slot === TIME ? c.post.createdAt : slot === LIKES ? c.post.likeCount : c.post.repostCount
}

/** A column with room for `n` entries (its first `keep` copied from `col`). */
function grown(col: Float64Array, n: number, keep: number): Float64Array {
  if (col.length >= n) return col
  const out = new Float64Array(Math.max(1024, Math.ceil(n * 1.25)))
  out.set(col.subarray(0, keep))
  return out
}

/** Everything FeedCache keeps in memory, shared by every FeedCache on one connection. */
interface Shared {
  posts: Map<number, CachedPost>
  /** a small number per agent instance key, for CachedPost.scores and lists' columns (least recently used first) */
  slots: Map<string, number>
  /** the build that last used each slot */
  slotBuild: Map<number, number>
  /** slot numbers given up (their instance was evicted), to be used again */
  freeSlots: number[]
  builds: number
  /** the largest candidate list of recent builds (decays), which sizes the cache of posts */
  maxRows: number
  /** how often a post left a list (it may be evicted from then on) */
  released: number
  /** after an eviction pass that could not bring the cache under its cap: its size then, and `released` then */
  stuck: { size: number; released: number } | null
  /** candidate lists by `${windowHours}:${max}` */
  lists: Map<string, CandidateList>
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

/** A snapshot's item as stored: [post uri, score, feedContext] (rank = position + 1). */
type StoredItem = [string, number, string]

const shared = new WeakMap<Sqlite, Shared>()

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
/** a cached post not used by this many builds is forgotten (when the cache is large) */
const EVICT_AFTER_BUILDS = 50
/** the cache of posts is kept under this many times the largest recent candidate list (and at least MIN_CACHED_POSTS) */
const CACHED_POSTS_PER_CANDIDATE = 3
export const MIN_CACHED_POSTS = 20_000
/** posts a preview scores with one static agent between two turns of the event loop */
const PREVIEW_CHUNK = 200
/** a candidate list no build used for this long is dropped (its posts may then be evicted) */
const LIST_IDLE_MS = 10 * 60_000
/** past this many changes per candidate, reading the list again is cheaper than reading the changes */
const CHANGES_PER_CANDIDATE = 4

/** Rows as `raw()` arrays: [id, created_at, like_count, repost_count] (created_at null: the post is gone) */
type CountRow = [number, number | null, number, number]
/** [id, uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent, like_count, repost_count] */
type PostRow = [number, string, string, number, string, string, string, string, AgentPost['embed'], string | null, string | null, string | null, number, number]

/** Newest first; ties by id, larger first. */
const newerFirst = (a: CachedPost, b: CachedPost) => b.post.createdAt - a.post.createdAt || b.id - a.id

/**
 * Ranked lists per (feed, mix fingerprint), kept in SQLite as numbered
 * snapshots (one row each, the items as one JSON value). A refresh writes a
 * new snapshot and leaves the old ones for a while, so a reader paging
 * through an older snapshot sees a consistent list, less any post deleted
 * since (read from `post_deletions`).
 *
 * In memory (per connection): parsed candidate posts by id with the static
 * scores already looked up, and per feed window the newest candidates, kept
 * current from the change log (`post_changes`), so a rebuild reads only what
 * changed since the last one; served pages, checked against the deletions
 * logged since they were read; and the newest snapshot per list for
 * LATEST_TTL_MS.
 */
export class FeedCache {
  private readonly db: Sqlite
  private readonly host: AgentHost
  private readonly log: Logger
  private readonly cacheSize: number
  private readonly snapshotTtlMs: number
  private readonly recheckMs: number
  /** instances with a slot (a column in every candidate list, a score in every cached post) at most */
  private readonly maxSlots: number
  private readonly mem: Shared
  private newest = { askedAt: -Infinity, value: 0 }
  private readonly st

  /** whether ranking may call an agent in this process (otherwise only its stored scores count) */
  private readonly mayRun: (inst: AgentInstance) => boolean

  constructor(
    db: Sqlite,
    host: AgentHost,
    log: Logger,
    opts: { cacheSize: number; snapshotTtlMs: number; mayRun?: (inst: AgentInstance) => boolean; recheckMs?: number; agentInstances?: number },
  ) {
    this.db = db
    this.host = host
    this.log = log
    this.mayRun = opts.mayRun ?? (() => true)
    this.cacheSize = opts.cacheSize
    this.snapshotTtlMs = opts.snapshotTtlMs
    this.recheckMs = opts.recheckMs ?? RECHECK_MS
    this.maxSlots = opts.agentInstances ?? DEFAULT_MAX_INSTANCES
    let sh = shared.get(db)
    if (!sh) {
      sh = { posts: new Map(), slots: new Map(), slotBuild: new Map(), freeSlots: [], builds: 0, maxRows: 0, released: 0, stuck: null, lists: new Map(), latest: new Map(), pages: new Map(), snapshotKeys: new Map(), snapshots: new Map(), parsedItems: 0, deleted: new Map(), deletionSeq: -1, probed: { at: -Infinity, lastDeletion: 0, live: new Map(), localDeletions: 0 } }
      shared.set(db, sh)
    }
    this.mem = sh
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      latest: p('SELECT id, built_at AS builtAt, size, build_ms AS buildMs FROM feed_snapshots WHERE feed = ? AND fingerprint = ? ORDER BY id DESC LIMIT 1'),
      // @NOTE one statement per served page: is the snapshot still there, and how far the deletions reach
      probe: p('SELECT (SELECT 1 FROM feed_snapshots WHERE id = ?), (SELECT max(seq) FROM post_deletions)').raw(),
      snapshotItems: p('SELECT items FROM feed_snapshots WHERE id = ?').pluck(),
      snapshotKey: p('SELECT feed, fingerprint FROM feed_snapshots WHERE id = ?').raw(),
      // @NOTE two subqueries: min() and max() in one SELECT would scan the table instead of reading both ends
      changeSpan: p('SELECT (SELECT min(seq) FROM post_changes), (SELECT max(seq) FROM post_changes)').raw(),
      lastDeletion: p('SELECT max(seq) FROM post_deletions').pluck(),
      deletionsSince: p('SELECT seq, uri FROM post_deletions WHERE seq > ? ORDER BY seq').raw(),
      candidates: p('SELECT id, created_at, like_count, repost_count FROM posts WHERE created_at >= ? ORDER BY created_at DESC, id DESC LIMIT ?').raw(),
      olderCandidates: p('SELECT id, created_at, like_count, repost_count FROM posts WHERE created_at >= ? AND created_at <= ? ORDER BY created_at DESC, id DESC LIMIT ?').raw(),
      // @NOTE not DISTINCT (a temporary b-tree): a post logged twice reads the same current row twice, and applying it twice changes nothing
      changes: p('SELECT c.post_id, p.created_at, p.like_count, p.repost_count FROM post_changes c LEFT JOIN posts p ON p.id = c.post_id WHERE c.seq > ?').raw(),
      postsById: p(`SELECT id, uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent, like_count, repost_count
        FROM posts WHERE id IN (SELECT value FROM json_each(?))`).raw(),
      storedScores: p('SELECT post_uri, instance, score FROM agent_scores WHERE post_uri IN (SELECT value FROM json_each(?))').raw(),
      instanceScores: p('SELECT post_uri, score FROM agent_scores WHERE instance = ? AND post_uri IN (SELECT value FROM json_each(?))').raw(),
      saveScore: p(`INSERT INTO agent_scores (instance, post_uri, score) VALUES (?, ?, ?)
        ON CONFLICT(instance, post_uri) DO UPDATE SET score = excluded.score`),
      insertSnapshot: p('INSERT INTO feed_snapshots (feed, fingerprint, built_at, size, build_ms, items) VALUES (?, ?, ?, ?, ?, ?)'),
      // @NOTE an author hiding from algorithmic feeds has no live posts here (their declaration logs them as deletions)
      postExists: p('SELECT 1 FROM posts p WHERE p.uri = ? AND NOT EXISTS (SELECT 1 FROM author_consent c WHERE c.did = p.author AND c.hide = 1)').pluck(),
      newestPostAt: p('SELECT indexed_at FROM posts ORDER BY id DESC LIMIT 1').pluck(),
      // @NOTE a snapshot superseded less than a minute ago stays: other processes may still take it for the newest (LATEST_TTL_MS)
      oldSnapshots: p(`SELECT s.id FROM feed_snapshots s WHERE s.built_at < ? AND EXISTS (SELECT 1 FROM feed_snapshots n
        WHERE n.feed = s.feed AND n.fingerprint = s.fingerprint AND n.id > s.id AND n.built_at < ?)`).pluck(),
      dropSnapshot: p('DELETE FROM feed_snapshots WHERE id = ?'),
    }
  }

  /** The newest snapshot of a list (as of at most LATEST_TTL_MS ago, or this process's own newest). */
  latest(feed: string, fingerprint: string, now = Date.now()): SnapshotInfo | undefined {
    const k = `${feed} ${fingerprint}`
    const hit = this.mem.latest.get(k)
    if (hit && now - hit.at < LATEST_TTL_MS) return hit.snap
    const snap = this.st.latest.get(feed, fingerprint) as SnapshotInfo | undefined
    if (this.mem.latest.size >= MAX_LATEST) this.mem.latest.clear()
    this.mem.latest.set(k, { at: now, snap })
    return snap
  }

  /** When the newest post was stored (ms since the epoch; 0 without posts), asked of SQLite at most every NEWEST_POST_MS. */
  newestPostAt(now = Date.now()): number {
    if (now - this.newest.askedAt >= NEWEST_POST_MS) this.newest = { askedAt: now, value: (this.st.newestPostAt.get() as number | undefined) ?? 0 }
    return this.newest.value
  }

  /** The feed and list key a snapshot was built for; undefined when it is gone. (Ids are never reused: AUTOINCREMENT.) */
  snapshotKey(snapshot: number): { feed: string; key: string } | undefined {
    // @NOTE remembered once read: a snapshot's id names one list for good (a removed one is caught by pageOf)
    const keys = this.mem.snapshotKeys
    let k = keys.get(snapshot)
    if (k) return k
    const r = this.st.snapshotKey.get(snapshot) as [string, string] | undefined
    if (!r) return undefined
    if (keys.size >= MAX_LATEST) keys.clear()
    keys.set(snapshot, (k = { feed: r[0], key: r[1] }))
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
    const local = deletionsLoggedHere(this.db)
    const fresh = now - probed.at < this.recheckMs && local === probed.localDeletions
    let live = fresh ? probed.live.get(snapshot) : undefined
    if (live === undefined) {
      const [exists, lastDeletion] = this.st.probe.get(snapshot) as [number | null, number | null]
      if (!fresh) {
        probed.at = now
        probed.localDeletions = local
        probed.live.clear()
      }
      probed.lastDeletion = lastDeletion ?? 0
      probed.live.set(snapshot, (live = exists !== null))
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
      if (!this.st.postExists.get(uri)) continue
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
    const rows = this.st.deletionsSince.all(mem.deletionSeq) as [number, string][]
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
    const json = this.st.snapshotItems.get(snapshot) as string | undefined
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

  /** Posts kept parsed in memory for ranking (shared by every FeedCache on this connection). */
  cachedPosts(): number {
    return this.mem.posts.size
  }

  /** False when ranking here leaves out an agent of the mix (then a refresh worker should build the list too). */
  ranksFully(mix: ResolvedMix): boolean {
    return mix.entries.every((e) => this.mayRun(e.inst))
  }

  /** Ranks the feed's candidates for a mix (nothing stored): the items with their attribution. */
  rank(feed: Feed, mix: ResolvedMix, now = Date.now(), subscriber?: SubscriberContext, limit = this.cacheSize): ListItem[] {
    return this.rankAt(feed, mix, now, subscriber, limit).items
  }

  /**
   * A preview: the mix ranked over at most `maxCandidates` of the feed's newest candidates, leaving nothing behind
   * (no slot, column or score kept, nothing saved). Static agents run here when they may (else their stored scores
   * are read), PREVIEW_CHUNK posts at a time; `pause` is awaited before each chunk and each other agent, so a preview
   * holds the event loop for one such step at a time.
   */
  async preview(
    feed: Feed,
    mix: ResolvedMix,
    opts: { limit: number; maxCandidates: number; pause: () => Promise<void>; now?: number; subscriber?: SubscriberContext },
  ): Promise<ListItem[]> {
    const now = opts.now ?? Date.now()
    const { list } = this.candidates(feed, now)
    // @NOTE copied: the shared list may change while this preview waits its turns
    const all = list.items.slice(0, Math.min(list.items.length, opts.maxCandidates)).map((c) => c.post)
    const fixed = new Map<number, Float64Array>()
    for (const [j, e] of mix.entries.entries()) {
      if (!e.inst.dynamic) fixed.set(j, await this.previewStatic(e.inst, all, now, opts.pause))
    }
    const keep = survivors(all.length, [...fixed.values()])
    const posts = keep ? Array.from(keep, (i) => all[i]) : all
    const m = posts.length
    const columns: ScoreColumn[] = []
    for (const [j, e] of mix.entries.entries()) {
      const col = fixed.get(j)
      let scores: Float64Array
      if (col) scores = keep ? gather(col, keep) : col
      else if (!this.mayRun(e.inst)) scores = new Float64Array(m).fill(NaN)
      else {
        await opts.pause()
        scores = (scoresColumns(e.inst.def) && this.host.runColumns(e.inst, figuresOf(posts), now)) || this.host.runColumn(e.inst, posts, now, opts.subscriber)
      }
      columns.push({ label: e.label, weight: e.weight, scores })
    }
    await opts.pause()
    return rankCandidates({ length: m, at: (i) => posts[i] }, columns, opts.limit).map((it) => ({
      uri: it.uri,
      score: it.score,
      context: encodeFeedContext({ fingerprint: mix.fingerprint, contributions: it.contributions, feed: feed.rkey }),
    }))
  }

  /** A static instance's scores for a preview's posts, as ranking reads them: computed here, or read as stored; nothing kept. */
  private async previewStatic(inst: AgentInstance, posts: AgentPost[], now: number, pause: () => Promise<void>): Promise<Float64Array> {
    const col = new Float64Array(posts.length).fill(NaN)
    if (this.runsHere(inst)) {
      // @NOTE a static agent scores each post alone, so its posts can be taken in chunks
      for (let i = 0; i < posts.length; i += PREVIEW_CHUNK) {
        await pause()
        col.set(this.host.runColumn(inst, posts.slice(i, i + PREVIEW_CHUNK), now), i)
      }
      return col
    }
    await pause()
    const at = new Map(posts.map((p, i) => [p.uri, i]))
    for (const [uri, score] of this.st.instanceScores.all(inst.key, JSON.stringify(posts.map((p) => p.uri))) as [string, number | null][]) {
      const i = at.get(uri)
      if (i !== undefined) col[i] = score === null ? DROP_CODE : score
    }
    return col
  }

  /** rank(), and the post_deletions row its candidates were read at (deletions past it may concern them). */
  private rankAt(feed: Feed, mix: ResolvedMix, now: number, subscriber: SubscriberContext | undefined, limit: number): { items: ListItem[]; deletionSeq: number } {
    const { list, deletionSeq } = this.candidates(feed, now)
    // static columns first: a post any of them drops is out whatever the rest say, so the rest only see the others
    const fixed = new Map<number, Float64Array>()
    mix.entries.forEach((e, j) => {
      if (!e.inst.dynamic) fixed.set(j, this.staticScores(e.inst, list, now))
    })
    // consent and blocks come before any agent: an excluded author's post is never a candidate
    const keep = withoutAuthors(survivors(list.items.length, [...fixed.values()]), list.items.length, (i) => list.items[i].post.author, ReaderFilter.of(this.db).excluder(subscriber?.did ?? null))
    const m = keep ? keep.length : list.items.length
    // @NOTE the survivors' post objects only when an agent reads them: agents that score columns, and ranking itself
    // (which reads only ties and the top), need not touch every post
    let posts: AgentPost[] | null = null
    const postsNow = () => (posts ??= keep ? Array.from(keep, (i) => list.items[i].post) : list.items.map((c) => c.post))
    let figures: PostColumns | null = null
    const figuresNow = (): PostColumns => {
      if (figures) return figures
      const [time, likes, reposts] = [TIME, LIKES, REPOSTS].map((slot) => {
        const col = this.figureColumn(list, slot)
        return keep ? gather(col, keep) : col.subarray(0, m)
      })
      return (figures = { length: m, createdAt: time, likeCount: likes, repostCount: reposts })
    }
    const scoresOf = (inst: AgentInstance, j: number): Float64Array => {
      const col = fixed.get(j)
      if (col) return keep ? gather(col, keep) : col
      // @NOTE an agent this process may not run (sandboxed, in the serving process) has no opinion here
      if (!this.mayRun(inst)) return new Float64Array(m).fill(NaN)
      return (scoresColumns(inst.def) && this.host.runColumns(inst, figuresNow(), now)) || this.host.runColumn(inst, postsNow(), now, subscriber)
    }
    const columns: ScoreColumn[] = mix.entries.map((e, j) => ({ label: e.label, weight: e.weight, scores: scoresOf(e.inst, j) }))
    const view = { length: m, at: (i: number) => list.items[keep ? keep[i] : i]?.post }
    const items = rankCandidates(view, columns, limit).map((it) => ({
      uri: it.uri,
      score: it.score,
      context: encodeFeedContext({ fingerprint: mix.fingerprint, contributions: it.contributions, feed: feed.rkey }),
    }))
    return { items, deletionSeq }
  }

  /**
   * The feed's candidates: the newest `maxCandidates` posts of its window,
   * newest first, with current counts. Read whole the first time (and after
   * long idleness), then kept current from the change log; posts not seen
   * before are read in one query. One read transaction, so the list, the
   * counts and the deletion row returned agree.
   */
  private candidates(feed: Feed, now: number): { list: CandidateList; deletionSeq: number } {
    const mem = this.mem
    const build = ++mem.builds
    const since = now - feed.windowHours * 3_600_000
    const max = feed.maxCandidates
    const key = `${feed.windowHours}:${max}`
    const { list, deletionSeq } = this.db.transaction(() => {
      const [first, last] = this.st.changeSpan.get() as [number | null, number | null]
      const seq = last ?? 0
      let list = mem.lists.get(key)
      const behind = list ? seq - list.seq : 0
      // @NOTE a gap (rows trimmed before this list read them) or a long backlog: read the list again
      if (!list || (first !== null && first > list.seq + 1) || behind < 0 || behind > CHANGES_PER_CANDIDATE * max) {
        if (list) this.dropList(key, list)
        list = { max, items: [], ids: new Set(), seq, full: false, usedAt: now, cols: new Map() }
        this.fill(list, this.st.candidates.all(since, max) as CountRow[], build)
        list.full = list.items.length >= max
        mem.lists.set(key, list)
      } else if (behind > 0) {
        this.applyChanges(list, this.st.changes.all(list.seq) as CountRow[], since, build)
        list.seq = seq
      }
      this.trim(list, since, build)
      return { list, deletionSeq: Number(this.st.lastDeletion.get() ?? 0) }
    })()
    list.usedAt = now
    // @NOTE posts in a list are never evicted, so they are not marked used here (50,000 writes to scattered objects);
    // a post is marked when it leaves a list
    for (const [k, l] of mem.lists) if (now - l.usedAt > LIST_IDLE_MS) this.dropList(k, l)
    this.evict(build, list.items.length)
    return { list, deletionSeq }
  }

  /** Adds rows (newest first, none of them in the list yet) to the end of a list. */
  private fill(list: CandidateList, rows: CountRow[], build: number): void {
    const got = this.load(rows, build)
    const from = list.items.length
    for (const c of got) {
      list.items.push(c)
      list.ids.add(c.id)
      c.refs++
    }
    for (const [slot, col] of list.cols) {
      const out = grown(col, list.items.length, from)
      for (let i = from; i < list.items.length; i++) out[i] = cellOf(list.items[i], slot)
      list.cols.set(slot, out)
    }
  }

  /** The cached posts of rows (in their order; gone ones left out), reading the ones not cached yet, with the rows' counts. */
  private load(rows: CountRow[], build: number): CachedPost[] {
    const mem = this.mem
    const missing: number[] = []
    for (const r of rows) if (r[1] !== null && !mem.posts.has(r[0])) missing.push(r[0])
    // @NOTE in id order: new posts sit together at the end of the table
    missing.sort((a, b) => a - b)
    for (let i = 0; i < missing.length; i += 10_000) {
      for (const r of this.st.postsById.all(JSON.stringify(missing.slice(i, i + 10_000))) as PostRow[]) {
        mem.posts.set(r[0], {
          id: r[0],
          post: {
            uri: r[1],
            author: r[2],
            createdAt: r[3],
            text: r[4],
            langs: parseList(r[5]),
            tags: parseList(r[6]),
            labels: parseList(r[7]),
            embed: r[8],
            quote: r[9],
            replyRoot: r[10],
            replyParent: r[11],
            likeCount: r[12],
            repostCount: r[13],
          },
          scores: [],
          used: build,
          refs: 0,
        })
      }
    }
    const out: CachedPost[] = []
    for (const [id, createdAt, likes, reposts] of rows) {
      const c = createdAt === null ? undefined : mem.posts.get(id)
      if (!c) continue
      c.post.likeCount = likes
      c.post.repostCount = reposts
      c.used = build
      out.push(c)
    }
    return out
  }

  /** Applies logged changes (current rows of the posts that changed) to a list: counts, deletions, new posts. */
  private applyChanges(list: CandidateList, rows: CountRow[], since: number, build: number): void {
    const mem = this.mem
    const gone = new Set<number>()
    const fresh: CountRow[] = []
    const queued = new Set<number>()
    const tail = list.items[list.items.length - 1]
    let likeCol = list.cols.get(LIKES)
    let repostCol = list.cols.get(REPOSTS)
    for (const r of rows) {
      const [id, createdAt, likes, reposts] = r
      if (list.ids.has(id)) {
        if (createdAt === null) gone.add(id)
        else {
          const c = mem.posts.get(id)!
          c.post.likeCount = likes
          c.post.repostCount = reposts
          const at = likeCol ? positionOf(list, c) : -1
          if (at >= 0) {
            likeCol![at] = likes
            repostCol![at] = reposts
          } else if (likeCol) {
            // @NOTE cannot happen while the list keeps its order; should it, the columns are made again from the posts
            this.log.warn({ post: id }, 'a candidate list lost its order; its columns of counts are rebuilt')
            for (const slot of [TIME, LIKES, REPOSTS]) list.cols.delete(slot)
            likeCol = repostCol = undefined
          }
        }
      } else if (createdAt !== null && createdAt >= since) {
        // @NOTE a full list only takes posts that sort before its tail: older ones were never in reach
        if ((!list.full || !tail || createdAt > tail.post.createdAt || (createdAt === tail.post.createdAt && id > tail.id)) && !queued.has(id)) {
          queued.add(id)
          fresh.push(r)
        }
      }
    }
    if (gone.size) {
      const cols = [...list.cols.values()]
      const items = list.items
      let w = 0
      for (let r = 0; r < items.length; r++) {
        const c = items[r]
        if (gone.has(c.id)) {
          list.ids.delete(c.id)
          c.refs--
          c.used = build
          mem.released++
          continue
        }
        if (w !== r) {
          items[w] = c
          for (const col of cols) col[w] = col[r]
        }
        w++
      }
      items.length = w
    }
    if (fresh.length) {
      const added = this.load(fresh, build).sort(newerFirst)
      for (const c of added) {
        list.ids.add(c.id)
        c.refs++
      }
      mergeNewest(list, added)
    }
    // deletions left a full list short: the posts just past its tail move up
    if (list.full && list.items.length < list.max) {
      const last = list.items[list.items.length - 1]
      const before = last ? last.post.createdAt : Number.MAX_SAFE_INTEGER
      const ties = last ? list.items.filter((c) => c.post.createdAt === before).length : 0
      const need = list.max - list.items.length
      const rows2 = (this.st.olderCandidates.all(since, before, need + ties) as CountRow[]).filter((r) => !list.ids.has(r[0]))
      this.fill(list, rows2.slice(0, need), build)
      if (list.items.length < list.max) list.full = false
    }
  }

  /** Drops posts that left the window and cuts the list to its size. */
  private trim(list: CandidateList, since: number, build: number): void {
    let end = list.items.length
    while (end > 0 && list.items[end - 1].post.createdAt < since) end--
    // @NOTE everything past a post that left the window is older still: nothing of the window lies past the tail now
    if (end < list.items.length) list.full = false
    if (end > list.max) {
      end = list.max
      list.full = true
    }
    if (end === list.items.length) return
    for (let i = end; i < list.items.length; i++) {
      const c = list.items[i]
      list.ids.delete(c.id)
      c.refs--
      c.used = build
      this.mem.released++
    }
    list.items.length = end
  }

  private dropList(key: string, list: CandidateList): void {
    const build = this.mem.builds
    for (const c of list.items) {
      c.refs--
      c.used = build
      this.mem.released++
    }
    this.mem.lists.delete(key)
  }

  /** Keeps the cache of posts bounded: posts no list holds go, least recently used first. */
  private evict(build: number, rows: number): void {
    const mem = this.mem
    // @NOTE when builds come seldom and the newest posts change between them, most of each candidate list is new:
    // "unused for 50 builds" alone kept up to 50 lists' worth of posts (the 30-minute soak's refresh worker grew by
    // ~200 MB); the bound on the cache's size decides, and the least recently used posts go first
    mem.maxRows = Math.max(rows, Math.floor(mem.maxRows * 0.98))
    const cap = Math.max(MIN_CACHED_POSTS, CACHED_POSTS_PER_CANDIDATE * mem.maxRows)
    if (mem.posts.size <= cap) {
      mem.stuck = null
      return
    }
    // @NOTE posts in lists cannot go: when a pass found too few to evict, the next build passes over every post again
    // only once posts were added or left a list since (six passes over 100,000+ posts a build, evicting nothing, cost
    // the serving process ~10 % while lists were built)
    const stuck = mem.stuck
    if (stuck && mem.posts.size <= stuck.size && mem.released === stuck.released) return
    for (let k = EVICT_AFTER_BUILDS; mem.posts.size > cap && k >= 1; k = Math.floor(k / 2)) {
      for (const [id, c] of mem.posts) if (c.refs === 0 && build - c.used > k) mem.posts.delete(id)
    }
    mem.stuck = mem.posts.size > cap ? { size: mem.posts.size, released: mem.released } : null
  }

  /**
   * Scores computed at ingest, as the list's column for the instance: read
   * from SQLite once per post (then kept with it, and in the column), with
   * any missing ones computed now and saved.
   */
  private staticScores(inst: AgentInstance, list: CandidateList, now: number): Float64Array {
    const key = inst.key
    const slot = this.slot(key)
    const items = list.items
    const n = items.length
    let col = list.cols.get(slot)
    if (!col) {
      col = grown(new Float64Array(0), n, 0)
      for (let i = 0; i < n; i++) col[i] = columnCode(items[i].scores[slot])
      list.cols.set(slot, col)
    }
    const unknown: number[] = []
    for (let i = 0; i < n; i++) if (col[i] === NOT_LOOKED_UP) unknown.push(i)
    /** posts scored here just now (not asked again below when the agent had no opinion) */
    let scoredNow: Set<CachedPost> | null = null
    if (unknown.length) {
      const lookup = unknown.map((i) => items[i]).filter((c) => c.scores[slot] === undefined)
      if (lookup.length && this.runsHere(inst)) {
        // @NOTE a static in-process agent is a pure function of the post: scoring it here costs less than reading its
        // stored score (~1 µs a post against a random read of agent_scores, ~10 µs); null (no opinion) stays NaN
        const got = this.host.run(inst, lookup.map((c) => c.post), now)
        scoredNow = new Set(lookup)
        lookup.forEach((c, j) => {
          const v = got[j]
          c.scores[slot] = v === null ? NaN : v === DROP ? null : v
        })
      } else if (lookup.length) {
        // every stored score of these posts (all instances: other mixes need them next), in key order
        const byUri = new Map(lookup.map((c) => [c.post.uri, c]))
        const sorted = [...byUri.keys()].sort()
        for (let i = 0; i < sorted.length; i += 10_000) {
          for (const [uri, instance, score] of this.st.storedScores.all(JSON.stringify(sorted.slice(i, i + 10_000))) as [string, string, number | null][]) {
            const c = byUri.get(uri)
            // @NOTE only instances that already have a slot: giving every stored instance one would evict those in use
            const at = instance === key ? slot : this.mem.slots.get(instance)
            if (c && at !== undefined) c.scores[at] = score
          }
        }
      }
      for (const i of unknown) {
        const c = items[i]
        if (c.scores[slot] === undefined) c.scores[slot] = NaN
        col[i] = columnCode(c.scores[slot])
      }
    }
    const still: number[] = []
    // @NOTE NaN: no score stored (the agent had no opinion), asked again
    if (this.mayRun(inst)) for (let i = 0; i < n; i++) if (col[i] !== col[i] && !scoredNow?.has(items[i])) still.push(i)
    if (still.length) {
      const got = this.host.run(inst, still.map((i) => items[i].post), now)
      if (got.some((v) => v !== null)) {
        this.db
          .transaction(() => {
            still.forEach((i, j) => {
              const v = got[j]
              // @NOTE "no opinion" (null) is not stored: the next build asks again
              if (v === null) return
              const c = items[i]
              c.scores[slot] = v === DROP ? null : v
              col[i] = columnCode(c.scores[slot])
              this.st.saveScore.run(key, c.post.uri, v === DROP ? null : v)
            })
          })
          .immediate()
      }
    }
    return col.subarray(0, n)
  }

  /** A list's column of its posts' createdAt, like or repost counts (slot TIME, LIKES, REPOSTS), made the first time it is asked for. */
  private figureColumn(list: CandidateList, slot: number): Float64Array {
    let col = list.cols.get(slot)
    if (!col) {
      const n = list.items.length
      col = grown(new Float64Array(0), n, 0)
      for (let i = 0; i < n; i++) col[i] = cellOf(list.items[i], slot)
      list.cols.set(slot, col)
    }
    return col
  }

  /** Whether ranking here runs an instance itself rather than reading its stored scores: in-process agents it may run. */
  private runsHere(inst: AgentInstance): boolean {
    const kind = this.host.kindOf(inst.def.id)
    return (kind === 'builtin' || kind === 'installed') && this.mayRun(inst)
  }

  /** The slot of an instance (made now if it has none; the least recently used slot goes when there are maxSlots). */
  private slot(key: string): number {
    const mem = this.mem
    let n = mem.slots.get(key)
    if (n !== undefined) {
      mem.slots.delete(key)
    } else {
      if (mem.slots.size >= this.maxSlots) this.evictSlot()
      n = mem.freeSlots.pop() ?? mem.slots.size
    }
    mem.slots.set(key, n)
    mem.slotBuild.set(n, mem.builds)
    return n
  }

  /** Forgets the least recently used slot (not one this build uses): its column in every list and its score in every post. */
  private evictSlot(): void {
    const mem = this.mem
    for (const [key, n] of mem.slots) {
      if (mem.slotBuild.get(n) === mem.builds) continue
      mem.slots.delete(key)
      mem.slotBuild.delete(n)
      for (const list of mem.lists.values()) list.cols.delete(n)
      for (const c of mem.posts.values()) if (c.scores.length > n) c.scores[n] = undefined
      mem.freeSlots.push(n)
      this.log.debug({ instance: key, slots: mem.slots.size }, 'agent instance column evicted')
      return
    }
  }

  /** Instances holding a slot now (at most SKYSIFT_AGENT_INSTANCES, shared by every FeedCache on this connection). */
  slotCount(): number {
    return this.mem.slots.size
  }

  /**
   * Ranks the feed's candidates for a mix and stores the result as a new
   * snapshot under `key` (the mix fingerprint, or a per-reader key for
   * personal lists, which get the reader's context).
   */
  build(feed: Feed, mix: ResolvedMix, now = Date.now(), opts: { key?: string; subscriber?: SubscriberContext } = {}): SnapshotInfo {
    const t0 = performance.now()
    const { items, deletionSeq } = this.rankAt(feed, mix, now, opts.subscriber, this.cacheSize)
    return this.store(feed, opts.key ?? mix.fingerprint, items, now, performance.now() - t0, deletionSeq)
  }

  /**
   * Stores a ranked list as a new snapshot. `checkedAt`: the post_deletions
   * row the items were known live at (then only later deletions are looked
   * up); without it every item is looked up.
   */
  store(feed: Feed, key: string, items: ListItem[], now = Date.now(), buildMs = 0, checkedAt?: number): SnapshotInfo {
    const { id, size } = this.db
      .transaction(() => {
        // @NOTE the items were ranked before this transaction: a post deleted in between (by the writer in another process) stays out
        let live: ListItem[]
        if (checkedAt === undefined) live = items.filter((it) => this.st.postExists.get(it.uri))
        else {
          const gone = new Set((this.st.deletionsSince.all(checkedAt) as [number, string][]).map((r) => r[1]))
          live = gone.size ? items.filter((it) => !gone.has(it.uri) || this.st.postExists.get(it.uri)) : items
        }
        const json = JSON.stringify(live.map((it): StoredItem => [it.uri, it.score, it.context]))
        const sid = Number(this.st.insertSnapshot.run(feed.uri, key, now, live.length, buildMs, json).lastInsertRowid)
        return { id: sid, size: live.length }
      })
      .immediate()
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
    return stored.filter(([uri]) => this.st.postExists.get(uri)).map(([uri, score, context]) => ({ uri, score, context }))
  }

  /**
   * A snapshot's items as stored, and the post_deletions row read just before them. Posts deleted since the
   * snapshot was built may be among them: pages read from a snapshot leave those out (see pageOf), and store() given
   * the row leaves out the ones deleted after it. What a list made from another costs without a lookup per item.
   */
  storedList(snapshot: number): { items: ListItem[]; checkedAt: number } {
    // @NOTE read before the items: a deletion committed meanwhile has a later row, which store() reads
    const checkedAt = Number(this.st.lastDeletion.get() ?? 0)
    const stored = this.storedItems(snapshot) ?? []
    return { items: stored.map(([uri, score, context]) => ({ uri, score, context })), checkedAt }
  }

  postExists(uri: string): boolean {
    return !!this.st.postExists.get(uri)
  }

  /** Deletes snapshots older than the TTL, keeping the newest of each list. */
  prune(now = Date.now()): number {
    const ids = this.st.oldSnapshots.all(now - this.snapshotTtlMs, now - 60_000) as number[]
    this.db.transaction(() => {
      for (const id of ids) this.st.dropSnapshot.run(id)
    })()
    if (ids.length) this.mem.probed.at = -Infinity
    return ids.length
  }
}

/** The positions no column drops, or null when none is dropped (then every position stays). */
function survivors(n: number, cols: Float64Array[]): Int32Array | null {
  if (!cols.length) return null
  const out = new Int32Array(n)
  let m = 0
  for (let i = 0; i < n; i++) {
    let dropped = false
    for (const col of cols) {
      if (col[i] === DROP_CODE) {
        dropped = true
        break
      }
    }
    if (!dropped) out[m++] = i
  }
  return m === n ? null : out.subarray(0, m)
}

/** Where a post of the list sits, or -1 (the list is newest first, ties by id, larger first; its TIME column must exist). */
function positionOf(list: CandidateList, c: CachedPost): number {
  const time = list.cols.get(TIME)!
  const t = c.post.createdAt
  let lo = 0
  let hi = list.items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (time[mid] > t || (time[mid] === t && list.items[mid].id > c.id)) lo = mid + 1
    else hi = mid
  }
  return list.items[lo] === c ? lo : -1
}

/** The time and engagement columns of some posts. */
function figuresOf(posts: AgentPost[]): PostColumns {
  const n = posts.length
  const out = { length: n, createdAt: new Float64Array(n), likeCount: new Float64Array(n), repostCount: new Float64Array(n) }
  posts.forEach((p, i) => {
    out.createdAt[i] = p.createdAt
    out.likeCount[i] = p.likeCount
    out.repostCount[i] = p.repostCount
  })
  return out
}

/** col[i] for each i of `at`. */
function gather(col: Float64Array, at: Int32Array): Float64Array {
  const out = new Float64Array(at.length)
  for (let k = 0; k < at.length; k++) out[k] = col[at[k]]
  return out
}

/** A stored JSON array of strings (langs, tags, labels): most are empty or one of a few language lists. */
function parseList(json: string): string[] {
  if (json === '[]') return []
  let v = listCache.get(json)
  if (v === undefined) {
    v = JSON.parse(json) as string[]
    if (json.length <= 32) {
      if (listCache.size >= 1000) listCache.clear()
      listCache.set(json, v)
    }
  }
  // @NOTE a copy: agents get their own arrays
  return v.slice()
}
const listCache = new Map<string, string[]>()

/** Merges posts sorted newest first into a list (sorted the same way), columns included. */
function mergeNewest(list: CandidateList, b: CachedPost[]): void {
  const a = list.items
  const n = a.length + b.length
  const items = new Array<CachedPost>(n)
  // where each merged entry comes from, up to the last of `b` (i >= 0 is a[i], ~j is b[j]); the rest is a's tail
  const from = new Int32Array(n)
  let i = 0
  let j = 0
  let k = 0
  while (j < b.length) {
    if (i < a.length && newerFirst(a[i], b[j]) <= 0) {
      from[k] = i
      items[k++] = a[i++]
    } else {
      from[k] = ~j
      items[k++] = b[j++]
    }
  }
  const head = k
  const tail = i
  while (i < a.length) items[k++] = a[i++]
  for (const [slot, col] of list.cols) {
    const out = new Float64Array(Math.max(1024, Math.ceil(n * 1.25)))
    for (let q = 0; q < head; q++) {
      const f = from[q]
      out[q] = f >= 0 ? col[f] : cellOf(b[~f], slot)
    }
    // @NOTE new posts are nearly always the newest: most of a merge is a's tail, copied in one go
    out.set(col.subarray(tail, a.length), head)
    list.cols.set(slot, out)
  }
  list.items = items
}

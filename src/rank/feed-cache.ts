import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { AgentHost, AgentInstance } from '../score/host.ts'
import { DROP, type AgentPost, type Score, type SubscriberContext } from '../score/sdk.ts'
import type { Sqlite } from '../store/db.ts'
import { encodeFeedContext } from './feed-context.ts'
import type { ResolvedMix } from './mix.ts'
import { rankCandidates, type ScoreColumn } from './rank.ts'

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

/** A post as ranking keeps it in memory: immutable for its id, apart from the counts (refreshed every build). */
interface CachedPost {
  post: AgentPost
  /**
   * static scores by instance slot (Shared.slots): a number; null = drop; NaN = none stored (the agent had no
   * opinion: it is asked again every build, as a post without a stored score always was); undefined = not looked up
   */
  scores: (number | null | undefined)[]
  /** the build that last used it (older ones are evicted) */
  used: number
}

/** Everything FeedCache keeps in memory, shared by every FeedCache on one connection. */
interface Shared {
  posts: Map<number, CachedPost>
  /** a small number per agent instance key, for CachedPost.scores */
  slots: Map<string, number>
  builds: number
  /** the largest candidate list of recent builds (decays), which sizes the cache of posts */
  maxRows: number
  /** the newest snapshot per (feed, key), as read at `at` */
  latest: Map<string, { at: number; snap: SnapshotInfo | undefined }>
  /** pages served, with the snapshot version they were read at */
  pages: Map<string, { version: number; items: CacheItem[] }>
}

const shared = new WeakMap<Sqlite, Shared>()

/** How long latest() trusts what it read: another process's new snapshot is seen this much later at most (this process's at once). */
export const LATEST_TTL_MS = 1000
const MAX_PAGES = 20_000
const MAX_LATEST = 50_000
/** a cached post not used by this many builds is forgotten (when the cache is large) */
const EVICT_AFTER_BUILDS = 50
/** the cache of posts is kept under this many times the largest recent candidate list (and at least MIN_CACHED_POSTS) */
const CACHED_POSTS_PER_CANDIDATE = 3
export const MIN_CACHED_POSTS = 20_000

/** Rows as `raw()` arrays: [id, like_count, repost_count] */
type CountRow = [number, number, number]
/** [id, uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent] */
type PostRow = [number, string, string, number, string, string, string, string, AgentPost['embed'], string | null, string | null, string | null]

/**
 * Ranked lists per (feed, mix fingerprint), kept in SQLite as numbered
 * snapshots. A refresh writes a new snapshot and leaves the old ones for a
 * while, so a reader paging through an older snapshot sees a consistent list.
 *
 * In memory (per connection): parsed candidate posts by id with the static
 * scores already looked up, so a rebuild reads only (id, counts) of its
 * candidates plus whatever is new; served pages, checked against their
 * snapshot's version (bumped by a trigger whenever one of its items is
 * deleted) with one primary-key read; and the newest snapshot per list for
 * LATEST_TTL_MS.
 */
export class FeedCache {
  private readonly db: Sqlite
  private readonly host: AgentHost
  private readonly log: Logger
  private readonly cacheSize: number
  private readonly snapshotTtlMs: number
  private readonly mem: Shared
  private readonly st

  /** whether ranking may call an agent in this process (otherwise only its stored scores count) */
  private readonly mayRun: (inst: AgentInstance) => boolean

  constructor(db: Sqlite, host: AgentHost, log: Logger, opts: { cacheSize: number; snapshotTtlMs: number; mayRun?: (inst: AgentInstance) => boolean }) {
    this.db = db
    this.host = host
    this.log = log
    this.mayRun = opts.mayRun ?? (() => true)
    this.cacheSize = opts.cacheSize
    this.snapshotTtlMs = opts.snapshotTtlMs
    let sh = shared.get(db)
    if (!sh) shared.set(db, (sh = { posts: new Map(), slots: new Map(), builds: 0, maxRows: 0, latest: new Map(), pages: new Map() }))
    this.mem = sh
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      latest: p('SELECT id, built_at AS builtAt, size, build_ms AS buildMs FROM feed_snapshots WHERE feed = ? AND fingerprint = ? ORDER BY id DESC LIMIT 1'),
      version: p('SELECT version FROM feed_snapshots WHERE id = ?').pluck(),
      candidates: p('SELECT id, like_count, repost_count FROM posts WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?').raw(),
      postsById: p(`SELECT id, uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent
        FROM posts WHERE id IN (SELECT value FROM json_each(?))`).raw(),
      storedScores: p('SELECT post_uri, instance, score FROM agent_scores WHERE post_uri IN (SELECT value FROM json_each(?))').raw(),
      saveScore: p(`INSERT INTO agent_scores (instance, post_uri, score) VALUES (?, ?, ?)
        ON CONFLICT(instance, post_uri) DO UPDATE SET score = excluded.score`),
      insertSnapshot: p('INSERT INTO feed_snapshots (feed, fingerprint, built_at, size, build_ms) VALUES (?, ?, ?, ?, ?)'),
      insertItem: p('INSERT INTO feed_items (snapshot, rank, post_uri, score, context) VALUES (?, ?, ?, ?, ?)'),
      page: p('SELECT rank, post_uri AS postUri, context FROM feed_items WHERE snapshot = ? AND rank > ? ORDER BY rank LIMIT ?'),
      allItems: p('SELECT post_uri AS uri, score, context FROM feed_items WHERE snapshot = ? ORDER BY rank'),
      postExists: p('SELECT 1 FROM posts WHERE uri = ?').pluck(),
      // @NOTE a snapshot superseded less than a minute ago stays: other processes may still take it for the newest (LATEST_TTL_MS)
      oldSnapshots: p(`SELECT s.id FROM feed_snapshots s WHERE s.built_at < ? AND EXISTS (SELECT 1 FROM feed_snapshots n
        WHERE n.feed = s.feed AND n.fingerprint = s.fingerprint AND n.id > s.id AND n.built_at < ?)`).pluck(),
      dropItems: p('DELETE FROM feed_items WHERE snapshot = ?'),
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

  /** Forgets what latest() remembers (a snapshot it named is gone). */
  forgetLatest(): void {
    this.mem.latest.clear()
  }

  exists(snapshot: number): boolean {
    return this.st.version.get(snapshot) !== undefined
  }

  /** Up to `limit` items of a snapshot after `afterRank` ([] when the snapshot is gone). Callers must not change the items. */
  page(snapshot: number, afterRank: number, limit: number): CacheItem[] {
    return this.pageOf(snapshot, afterRank, limit) ?? []
  }

  /**
   * Like page(), but null when the snapshot no longer exists. Served from
   * memory while the snapshot's version (one primary-key read) is unchanged.
   */
  pageOf(snapshot: number, afterRank: number, limit: number): CacheItem[] | null {
    const version = this.st.version.get(snapshot) as number | undefined
    if (version === undefined) return null
    const k = `${snapshot}:${afterRank}:${limit}`
    const hit = this.mem.pages.get(k)
    if (hit && hit.version === version) return hit.items
    const items = this.st.page.all(snapshot, afterRank, limit) as CacheItem[]
    if (this.mem.pages.size >= MAX_PAGES) this.mem.pages.clear()
    this.mem.pages.set(k, { version, items })
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
    const since = now - feed.windowHours * 3_600_000
    const cached = this.candidates(since, feed.maxCandidates)
    const posts = cached.map((c) => c.post)
    const columns: ScoreColumn[] = mix.entries.map((e) => ({
      label: e.label,
      weight: e.weight,
      scores: e.inst.dynamic
        ? this.mayRun(e.inst)
          ? this.host.run(e.inst, posts, now, subscriber)
          : new Array<Score>(posts.length).fill(null)
        : this.staticScores(e.inst, cached, now),
    }))
    return rankCandidates(posts, columns, limit).map((it) => ({
      uri: it.uri,
      score: it.score,
      context: encodeFeedContext({ fingerprint: mix.fingerprint, contributions: it.contributions, feed: feed.rkey }),
    }))
  }

  /**
   * The newest `max` posts since `since`, newest first: ids and counts from
   * SQLite, the rest from memory (posts not seen before are read in one query).
   */
  private candidates(since: number, max: number): CachedPost[] {
    const mem = this.mem
    const build = ++mem.builds
    const rows = this.st.candidates.all(since, max) as CountRow[]
    const missing: number[] = []
    for (const r of rows) if (!mem.posts.has(r[0])) missing.push(r[0])
    if (missing.length) {
      for (const r of this.st.postsById.all(JSON.stringify(missing)) as PostRow[]) {
        mem.posts.set(r[0], {
          post: {
            uri: r[1],
            author: r[2],
            createdAt: r[3],
            text: r[4],
            langs: JSON.parse(r[5]),
            tags: JSON.parse(r[6]),
            labels: JSON.parse(r[7]),
            embed: r[8],
            quote: r[9],
            replyRoot: r[10],
            replyParent: r[11],
            likeCount: 0,
            repostCount: 0,
          },
          scores: [],
          used: build,
        })
      }
    }
    const out: CachedPost[] = []
    for (const [id, likes, reposts] of rows) {
      const c = mem.posts.get(id)
      if (!c) continue // deleted between the two reads
      c.post.likeCount = likes
      c.post.repostCount = reposts
      c.used = build
      out.push(c)
    }
    // @NOTE when builds come seldom and the newest posts change between them, most of each candidate list is new:
    // "unused for 50 builds" alone kept up to 50 lists' worth of posts (the 30-minute soak's refresh worker grew by
    // ~200 MB); the bound on the cache's size decides, and the least recently used posts go first
    mem.maxRows = Math.max(rows.length, Math.floor(mem.maxRows * 0.98))
    const cap = Math.max(MIN_CACHED_POSTS, CACHED_POSTS_PER_CANDIDATE * mem.maxRows)
    for (let k = EVICT_AFTER_BUILDS; mem.posts.size > cap && k >= 1; k = Math.floor(k / 2)) {
      for (const [id, c] of mem.posts) if (build - c.used > k) mem.posts.delete(id)
    }
    return out
  }

  /** Scores computed at ingest (read once per post, then kept with it), with any missing ones computed now and saved. */
  private staticScores(inst: AgentInstance, cached: CachedPost[], now: number): Score[] {
    const key = inst.key
    const slot = this.slot(key)
    const unknown: CachedPost[] = []
    for (const c of cached) if (c.scores[slot] === undefined) unknown.push(c)
    if (unknown.length) {
      // every stored score of these posts (all instances: other mixes need them next)
      const byUri = new Map(unknown.map((c) => [c.post.uri, c]))
      for (let i = 0; i < unknown.length; i += 10_000) {
        const uris = JSON.stringify(unknown.slice(i, i + 10_000).map((c) => c.post.uri))
        for (const [uri, instance, score] of this.st.storedScores.all(uris) as [string, string, number | null][]) {
          const c = byUri.get(uri)
          if (c) c.scores[this.slot(instance)] = score
        }
      }
      for (const c of unknown) if (c.scores[slot] === undefined) c.scores[slot] = NaN
    }
    const still = this.mayRun(inst) ? cached.filter((c) => Number.isNaN(c.scores[slot])) : []
    if (still.length) {
      const got = this.host.run(inst, still.map((c) => c.post), now)
      if (got.some((v) => v !== null)) {
        this.db
          .transaction(() => {
            still.forEach((c, j) => {
              const v = got[j]
              // @NOTE "no opinion" (null) is not stored: the next build asks again
              if (v === null) return
              c.scores[slot] = v === DROP ? null : v
              this.st.saveScore.run(key, c.post.uri, v === DROP ? null : v)
            })
          })
          .immediate()
      }
    }
    const out = new Array<Score>(cached.length)
    for (let i = 0; i < cached.length; i++) {
      const v = cached[i].scores[slot]
      out[i] = v === undefined || Number.isNaN(v) ? null : v === null ? DROP : v
    }
    return out
  }

  private slot(key: string): number {
    let n = this.mem.slots.get(key)
    if (n === undefined) this.mem.slots.set(key, (n = this.mem.slots.size))
    return n
  }

  /**
   * Ranks the feed's candidates for a mix and stores the result as a new
   * snapshot under `key` (the mix fingerprint, or a per-reader key for
   * personal lists, which get the reader's context).
   */
  build(feed: Feed, mix: ResolvedMix, now = Date.now(), opts: { key?: string; subscriber?: SubscriberContext } = {}): SnapshotInfo {
    const t0 = performance.now()
    const items = this.rank(feed, mix, now, opts.subscriber)
    return this.store(feed, opts.key ?? mix.fingerprint, items, now, performance.now() - t0)
  }

  /** Stores a ranked list as a new snapshot. */
  store(feed: Feed, key: string, items: ListItem[], now = Date.now(), buildMs = 0): SnapshotInfo {
    const { id, size } = this.db
      .transaction(() => {
        // @NOTE candidates were read before this transaction: a post deleted in between (by the writer in another process) stays out
        const live = items.filter((it) => this.st.postExists.get(it.uri))
        const sid = Number(this.st.insertSnapshot.run(feed.uri, key, now, live.length, buildMs).lastInsertRowid)
        live.forEach((it, i) => this.st.insertItem.run(sid, i + 1, it.uri, it.score, it.context))
        return { id: sid, size: live.length }
      })
      .immediate()
    this.log.debug({ feed: feed.rkey, key, size, buildMs }, 'feed snapshot stored')
    const snap = { id, builtAt: now, size, buildMs }
    this.mem.latest.set(`${feed.uri} ${key}`, { at: Date.now(), snap })
    return snap
  }

  /** Every item of a snapshot, in order. */
  items(snapshot: number): ListItem[] {
    return (this.st.allItems.all(snapshot) as { uri: string; score: number; context: string }[])
  }

  postExists(uri: string): boolean {
    return !!this.st.postExists.get(uri)
  }

  /** Deletes snapshots older than the TTL, keeping the newest of each list. */
  prune(now = Date.now()): number {
    const ids = this.st.oldSnapshots.all(now - this.snapshotTtlMs, now - 60_000) as number[]
    this.db.transaction(() => {
      for (const id of ids) {
        this.st.dropItems.run(id)
        this.st.dropSnapshot.run(id)
      }
    })()
    return ids.length
  }
}

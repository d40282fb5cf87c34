import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { AgentHost } from '../score/host.ts'
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

interface PostRow {
  uri: string
  author: string
  created_at: number
  text: string
  langs: string
  tags: string
  labels: string
  embed: AgentPost['embed']
  quote: string | null
  reply_root: string | null
  reply_parent: string | null
  like_count: number
  repost_count: number
}

const toAgentPost = (r: PostRow): AgentPost => ({
  uri: r.uri,
  author: r.author,
  createdAt: r.created_at,
  text: r.text,
  langs: JSON.parse(r.langs),
  tags: JSON.parse(r.tags),
  labels: JSON.parse(r.labels),
  embed: r.embed,
  quote: r.quote,
  replyRoot: r.reply_root,
  replyParent: r.reply_parent,
  likeCount: r.like_count,
  repostCount: r.repost_count,
})

/**
 * Ranked lists per (feed, mix fingerprint), kept in SQLite as numbered
 * snapshots. A refresh writes a new snapshot and leaves the old ones for a
 * while, so a reader paging through an older snapshot sees a consistent list.
 */
export class FeedCache {
  private readonly db: Sqlite
  private readonly host: AgentHost
  private readonly log: Logger
  private readonly cacheSize: number
  private readonly snapshotTtlMs: number
  private readonly st

  constructor(db: Sqlite, host: AgentHost, log: Logger, opts: { cacheSize: number; snapshotTtlMs: number }) {
    this.db = db
    this.host = host
    this.log = log
    this.cacheSize = opts.cacheSize
    this.snapshotTtlMs = opts.snapshotTtlMs
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      latest: p('SELECT id, built_at AS builtAt, size, build_ms AS buildMs FROM feed_snapshots WHERE feed = ? AND fingerprint = ? ORDER BY id DESC LIMIT 1'),
      exists: p('SELECT 1 FROM feed_snapshots WHERE id = ?').pluck(),
      candidates: p(`SELECT uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent, like_count, repost_count
        FROM posts WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?`),
      storedScores: p(`SELECT s.post_uri AS uri, s.score AS score FROM agent_scores s JOIN posts p ON p.uri = s.post_uri
        WHERE s.instance = ? AND p.created_at >= ?`),
      saveScore: p(`INSERT INTO agent_scores (instance, post_uri, score) VALUES (?, ?, ?)
        ON CONFLICT(instance, post_uri) DO UPDATE SET score = excluded.score`),
      insertSnapshot: p('INSERT INTO feed_snapshots (feed, fingerprint, built_at, size, build_ms) VALUES (?, ?, ?, ?, ?)'),
      // @NOTE candidates are read before this transaction; a post deleted in between (by the writer in another process) stays out
      insertItem: p('INSERT INTO feed_items (snapshot, rank, post_uri, score, context) SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM posts WHERE uri = ?)'),
      page: p('SELECT rank, post_uri AS postUri, context FROM feed_items WHERE snapshot = ? AND rank > ? ORDER BY rank LIMIT ?'),
      allItems: p('SELECT post_uri AS uri, score, context FROM feed_items WHERE snapshot = ? ORDER BY rank'),
      postExists: p('SELECT 1 FROM posts WHERE uri = ?').pluck(),
      oldSnapshots: p('SELECT id FROM feed_snapshots WHERE built_at < ? AND id NOT IN (SELECT max(id) FROM feed_snapshots GROUP BY feed, fingerprint)').pluck(),
      dropItems: p('DELETE FROM feed_items WHERE snapshot = ?'),
      dropSnapshot: p('DELETE FROM feed_snapshots WHERE id = ?'),
    }
  }

  latest(feed: string, fingerprint: string): SnapshotInfo | undefined {
    return this.st.latest.get(feed, fingerprint) as SnapshotInfo | undefined
  }

  exists(snapshot: number): boolean {
    return !!this.st.exists.get(snapshot)
  }

  /** Up to `limit` items of a snapshot after `afterRank`. */
  page(snapshot: number, afterRank: number, limit: number): CacheItem[] {
    return this.st.page.all(snapshot, afterRank, limit) as CacheItem[]
  }

  /** Ranks the feed's candidates for a mix (nothing stored): the items with their attribution. */
  rank(feed: Feed, mix: ResolvedMix, now = Date.now(), subscriber?: SubscriberContext, limit = this.cacheSize): ListItem[] {
    const since = now - feed.windowHours * 3_600_000
    const rows = this.st.candidates.all(since, feed.maxCandidates) as PostRow[]
    const posts = rows.map(toAgentPost)
    const columns: ScoreColumn[] = mix.entries.map((e) => ({
      label: e.label,
      weight: e.weight,
      scores: e.inst.dynamic ? this.host.run(e.inst, posts, now, subscriber) : this.staticScores(e.inst.key, e.inst, posts, since, now),
    }))
    return rankCandidates(posts, columns, limit).map((it) => ({
      uri: it.uri,
      score: it.score,
      context: encodeFeedContext({ fingerprint: mix.fingerprint, contributions: it.contributions, feed: feed.rkey }),
    }))
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
    const id = this.db.transaction(() => {
      const sid = Number(this.st.insertSnapshot.run(feed.uri, key, now, items.length, buildMs).lastInsertRowid)
      items.forEach((it, i) => this.st.insertItem.run(sid, i + 1, it.uri, it.score, it.context, it.uri))
      return sid
    })()
    this.log.debug({ feed: feed.rkey, key, size: items.length, buildMs }, 'feed snapshot stored')
    return { id, builtAt: now, size: items.length, buildMs }
  }

  /** Every item of a snapshot, in order. */
  items(snapshot: number): ListItem[] {
    return (this.st.allItems.all(snapshot) as { uri: string; score: number; context: string }[])
  }

  postExists(uri: string): boolean {
    return !!this.st.postExists.get(uri)
  }

  /** Scores computed at ingest, with any missing ones computed now and saved. */
  private staticScores(key: string, inst: Parameters<AgentHost['run']>[0], posts: AgentPost[], since: number, now: number): Score[] {
    const stored = new Map<string, number | null>()
    for (const r of this.st.storedScores.iterate(key, since) as Iterable<{ uri: string; score: number | null }>) stored.set(r.uri, r.score)
    const missing: number[] = []
    const out: Score[] = posts.map((p, i) => {
      const v = stored.get(p.uri)
      if (v === undefined) {
        missing.push(i)
        return null
      }
      return v === null ? DROP : v
    })
    if (missing.length) {
      const got = this.host.run(inst, missing.map((i) => posts[i]), now)
      this.db.transaction(() => {
        missing.forEach((idx, j) => {
          out[idx] = got[j]
          if (got[j] !== null) this.st.saveScore.run(key, posts[idx].uri, got[j] === DROP ? null : got[j])
        })
      })()
    }
    return out
  }

  /** Deletes snapshots older than the TTL, keeping the newest of each list. */
  prune(now = Date.now()): number {
    const ids = this.st.oldSnapshots.all(now - this.snapshotTtlMs) as number[]
    this.db.transaction(() => {
      for (const id of ids) {
        this.st.dropItems.run(id)
        this.st.dropSnapshot.run(id)
      }
    })()
    return ids.length
  }
}

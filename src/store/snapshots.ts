import type { Sqlite } from './db.ts'
import { deletionsLoggedHere } from './post-log.ts'

/** A stored snapshot of a ranked list, without its items. */
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

/** A snapshot's item as stored: [post uri, score, feedContext] (rank = position + 1). */
export type StoredItem = [string, number, string]

const repositories = new WeakMap<Sqlite, SnapshotRepository>()

/**
 * The `feed_snapshots` rows (ranked lists, one row each, the items as one
 * JSON value) and what reading them needs of the posts: whether a post is
 * live, and the deletions logged in `post_deletions`. One per connection
 * (see of()), so its statements are prepared once.
 */
export class SnapshotRepository {
  private readonly db: Sqlite
  private readonly st

  /** The repository of a connection (made the first time). */
  static of(db: Sqlite): SnapshotRepository {
    let r = repositories.get(db)
    if (!r) repositories.set(db, (r = new SnapshotRepository(db)))
    return r
  }

  private constructor(db: Sqlite) {
    this.db = db
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      latest: p('SELECT id, built_at AS builtAt, size, build_ms AS buildMs FROM feed_snapshots WHERE feed = ? AND fingerprint = ? ORDER BY id DESC LIMIT 1'),
      // @NOTE one statement per served page: is the snapshot still there, and how far the deletions reach
      probe: p('SELECT (SELECT 1 FROM feed_snapshots WHERE id = ?), (SELECT max(seq) FROM post_deletions)').raw(),
      items: p('SELECT items FROM feed_snapshots WHERE id = ?').pluck(),
      key: p('SELECT feed, fingerprint FROM feed_snapshots WHERE id = ?').raw(),
      lastDeletion: p('SELECT max(seq) FROM post_deletions').pluck(),
      deletionsSince: p('SELECT seq, uri FROM post_deletions WHERE seq > ? ORDER BY seq').raw(),
      insert: p('INSERT INTO feed_snapshots (feed, fingerprint, built_at, size, build_ms, items) VALUES (?, ?, ?, ?, ?, ?)'),
      // @NOTE an author hiding from algorithmic feeds has no live posts here (their declaration logs them as deletions)
      postExists: p('SELECT 1 FROM posts p WHERE p.uri = ? AND NOT EXISTS (SELECT 1 FROM author_consent c WHERE c.did = p.author AND c.hide = 1)').pluck(),
      newestPostAt: p('SELECT indexed_at FROM posts ORDER BY id DESC LIMIT 1').pluck(),
      // @NOTE a snapshot superseded less than `supersededBefore` stays: other processes may still take it for the newest
      old: p(`SELECT s.id FROM feed_snapshots s WHERE s.built_at < ? AND EXISTS (SELECT 1 FROM feed_snapshots n
        WHERE n.feed = s.feed AND n.fingerprint = s.fingerprint AND n.id > s.id AND n.built_at < ?)`).pluck(),
      drop: p('DELETE FROM feed_snapshots WHERE id = ?'),
    }
  }

  /** The newest snapshot of a list (feed, list key). */
  latest(feed: string, key: string): SnapshotInfo | undefined {
    return this.st.latest.get(feed, key) as SnapshotInfo | undefined
  }

  /** Whether a snapshot exists, and the newest post_deletions row (0 without any), in one statement. */
  probe(snapshot: number): { exists: boolean; lastDeletion: number } {
    const [exists, lastDeletion] = this.st.probe.get(snapshot) as [number | null, number | null]
    return { exists: exists !== null, lastDeletion: lastDeletion ?? 0 }
  }

  /** A snapshot's items as stored (JSON), or undefined when it is gone. */
  itemsJson(snapshot: number): string | undefined {
    return this.st.items.get(snapshot) as string | undefined
  }

  /** The feed and list key a snapshot was built for; undefined when it is gone. */
  key(snapshot: number): { feed: string; key: string } | undefined {
    const r = this.st.key.get(snapshot) as [string, string] | undefined
    return r && { feed: r[0], key: r[1] }
  }

  /** The newest post_deletions row (0 without any). */
  lastDeletion(): number {
    return Number(this.st.lastDeletion.get() ?? 0)
  }

  /** The deletions logged after a row: [seq, uri], in order. */
  deletionsSince(seq: number): [number, string][] {
    return this.st.deletionsSince.all(seq) as [number, string][]
  }

  /** How many times deletions were logged through this connection (see deletionsLoggedHere). */
  deletionsLoggedHere(): number {
    return deletionsLoggedHere(this.db)
  }

  /** Whether a post is live: stored, and its author does not hide from algorithmic feeds. */
  postExists(uri: string): boolean {
    return !!this.st.postExists.get(uri)
  }

  /** When the newest post was stored (ms since the epoch; 0 without posts). */
  newestPostAt(): number {
    return (this.st.newestPostAt.get() as number | undefined) ?? 0
  }

  /**
   * Stores a ranked list as a new snapshot, less its posts deleted meanwhile: with `checkedAt` (the post_deletions
   * row the items were known live at) only the ones deleted after it are looked up, without it every item is.
   */
  insert(feed: string, key: string, items: ListItem[], builtAt: number, buildMs: number, checkedAt?: number): { id: number; size: number } {
    return this.db
      .transaction(() => {
        // @NOTE the items were ranked before this transaction: a post deleted in between (by the writer in another process) stays out
        let live: ListItem[]
        if (checkedAt === undefined) live = items.filter((it) => this.st.postExists.get(it.uri))
        else {
          const gone = new Set(this.deletionsSince(checkedAt).map((r) => r[1]))
          live = gone.size ? items.filter((it) => !gone.has(it.uri) || this.st.postExists.get(it.uri)) : items
        }
        const json = JSON.stringify(live.map((it): StoredItem => [it.uri, it.score, it.context]))
        const id = Number(this.st.insert.run(feed, key, builtAt, live.length, buildMs, json).lastInsertRowid)
        return { id, size: live.length }
      })
      .immediate()
  }

  /** Deletes snapshots built before `builtBefore` that a newer one built before `supersededBefore` replaces; how many went. */
  prune(builtBefore: number, supersededBefore: number): number {
    const ids = this.st.old.all(builtBefore, supersededBefore) as number[]
    this.db.transaction(() => {
      for (const id of ids) this.st.drop.run(id)
    })()
    return ids.length
  }
}

import fs from 'node:fs'
import type { Sqlite } from './db.ts'

/** A saved source cursor as stored. */
export interface CursorRow {
  source: string
  cursor: string
  /** event time (ms) of the newest event the cursor covers */
  eventTime: number | null
  updatedAt: number
}

/** The newest default list of a feed: when it was built, how long that took, how many items. */
export interface DefaultListRow {
  builtAt: number
  buildMs: number
  size: number
}

/** A feed's stored ranked lists. */
export interface FeedListsRow {
  feed: string
  snapshots: number
  /** distinct fingerprints */
  lists: number
  /** built_at of the newest snapshot */
  newest: number
}

/**
 * The read-only queries behind the status pages, `skysift status` and the
 * metrics: counters, cursors, posts, ranked lists, mixes, and the size of the
 * SQLite file. Cheap enough to run every few seconds.
 */
export class StatusQueries {
  private readonly db: Sqlite
  private readonly st

  constructor(db: Sqlite) {
    this.db = db
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      counters: p('SELECT name, value FROM counters'),
      cursors: p('SELECT source, cursor, event_time AS eventTime, updated_at AS updatedAt FROM cursors ORDER BY updated_at DESC'),
      posts: p('SELECT count(*) AS count, min(created_at) AS oldest FROM posts'),
      defaultList: p('SELECT built_at AS builtAt, build_ms AS buildMs, size FROM feed_snapshots WHERE feed = ? AND fingerprint = ? ORDER BY id DESC LIMIT 1'),
      lists: p('SELECT feed, count(*) AS snapshots, count(DISTINCT fingerprint) AS lists, max(built_at) AS newest FROM feed_snapshots GROUP BY feed'),
      mixes: p('SELECT source, count(*) AS n FROM mixes GROUP BY source'),
      subscribers: p('SELECT count(DISTINCT subscriber) FROM mixes').pluck(),
      mixLists: p('SELECT count(*) FROM (SELECT DISTINCT feed, fingerprint FROM mixes)').pluck(),
    }
  }

  /** Every row of the `counters` table, by name. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const r of this.st.counters.all() as { name: string; value: number }[]) out[r.name] = r.value
    return out
  }

  /** Saved source cursors, the most recently saved first. */
  cursors(): CursorRow[] {
    return this.st.cursors.all() as CursorRow[]
  }

  /** How many posts are stored, and the creation time of the oldest. */
  posts(): { count: number; oldest: number | null } {
    return this.st.posts.get() as { count: number; oldest: number | null }
  }

  /** The newest snapshot of one list of a feed (its default list: the defaults' fingerprint). */
  newestList(feed: string, fingerprint: string): DefaultListRow | undefined {
    return this.st.defaultList.get(feed, fingerprint) as DefaultListRow | undefined
  }

  /** Stored snapshots and distinct lists per feed. */
  listsByFeed(): FeedListsRow[] {
    return this.st.lists.all() as FeedListsRow[]
  }

  /** Stored mixes by where they came from (`private`, `record`). */
  mixesBySource(): Map<string, number> {
    return new Map((this.st.mixes.all() as { source: string; n: number }[]).map((r) => [r.source, r.n]))
  }

  /** Readers with at least one stored mix. */
  subscribers(): number {
    return this.st.subscribers.get() as number
  }

  /** Distinct (feed, mix) pairs among stored mixes. */
  mixLists(): number {
    return this.st.mixLists.get() as number
  }

  /** The SQLite file and its write-ahead log, in bytes (0 for an in-memory database). */
  files(): { file: string; bytes: number; walBytes: number } {
    const file = this.db.name
    return { file, bytes: this.db.memory ? 0 : fileSize(file), walBytes: this.db.memory ? 0 : fileSize(`${file}-wal`) }
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size
  } catch {
    return 0
  }
}

import type { AgentPost } from '../score/sdk.ts'
import type { Sqlite } from './db.ts'
import { ReaderFilter } from './reader-filter.ts'

/** A candidate's current figures as `raw()` arrays: [id, created_at, like_count, repost_count] (created_at null: the post is gone). */
export type CountRow = [number, number | null, number, number]
/** A stored post's current counts: [id, like_count, repost_count]. */
export type CountsRow = [number, number, number]
/** [id, uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent, like_count, repost_count] */
export type PostRow = [
  number,
  string,
  string,
  number,
  string,
  string,
  string,
  string,
  AgentPost['embed'],
  string | null,
  string | null,
  string | null,
  number,
  number,
]

const POST_COLUMNS = 'id, uri, author, created_at, text, langs, tags, labels, embed, quote, reply_root, reply_parent, like_count, repost_count'

const repositories = new WeakMap<Sqlite, CandidateRepository>()

/**
 * What building a list reads of `posts` (the candidates of a window, the
 * changes logged in `post_changes` since a row, whole posts by id) and the
 * static scores of `agent_scores` it reads and writes. One per connection
 * (see of()), so its statements are prepared once.
 */
export class CandidateRepository {
  private readonly db: Sqlite
  private readonly st
  private readonly saveTx: (key: string, uris: string[], scores: (number | null)[]) => void

  /** The repository of a connection (made the first time). */
  static of(db: Sqlite): CandidateRepository {
    let r = repositories.get(db)
    if (!r) repositories.set(db, (r = new CandidateRepository(db)))
    return r
  }

  private constructor(db: Sqlite) {
    this.db = db
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      // @NOTE two subqueries: min() and max() in one SELECT would scan the table instead of reading both ends
      changeSpan: p('SELECT (SELECT min(seq) FROM post_changes), (SELECT max(seq) FROM post_changes)').raw(),
      lastDeletion: p('SELECT max(seq) FROM post_deletions').pluck(),
      newest: p('SELECT id, created_at, like_count, repost_count FROM posts WHERE created_at >= ? ORDER BY created_at DESC, id DESC LIMIT ?').raw(),
      older: p(
        'SELECT id, created_at, like_count, repost_count FROM posts WHERE created_at >= ? AND created_at <= ? ORDER BY created_at DESC, id DESC LIMIT ?',
      ).raw(),
      // @NOTE the ids alone, not joined to `posts`: a post is logged again for every batch that changes it (half of the
      // rows, when 30 s of new posts and their likes come in), and what each one needs is different (counts of posts
      // already in memory, whole rows of new ones); the reader asks for those once per post
      changedIds: p('SELECT post_id FROM post_changes WHERE seq > ?').pluck(),
      countsById: p('SELECT id, like_count, repost_count FROM posts WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id').raw(),
      postsById: p(`SELECT ${POST_COLUMNS} FROM posts WHERE id IN (SELECT value FROM json_each(?))`).raw(),
      postsByIdSince: p(`SELECT ${POST_COLUMNS} FROM posts WHERE id IN (SELECT value FROM json_each(?)) AND created_at >= ?`).raw(),
      postsInRange: p(`SELECT ${POST_COLUMNS} FROM posts WHERE id >= ? AND id <= ? AND created_at >= ? ORDER BY id`).raw(),
      storedScores: p('SELECT post_uri, instance, score FROM agent_scores WHERE post_uri IN (SELECT value FROM json_each(?))').raw(),
      instanceScores: p('SELECT post_uri, score FROM agent_scores WHERE instance = ? AND post_uri IN (SELECT value FROM json_each(?))').raw(),
      saveScore: p(`INSERT INTO agent_scores (instance, post_uri, score) VALUES (?, ?, ?)
        ON CONFLICT(instance, post_uri) DO UPDATE SET score = excluded.score`),
    }
    const save = db.transaction((key: string, uris: string[], scores: (number | null)[]) => {
      for (let i = 0; i < uris.length; i++) this.st.saveScore.run(key, uris[i], scores[i])
    })
    this.saveTx = (key, uris, scores) => save.immediate(key, uris, scores)
  }

  /**
   * Runs `read` in one read transaction, so what it reads (candidates, changes, the deletion row) agrees.
   * `read` must only read through this repository.
   */
  consistently<T>(read: () => T): T {
    return this.db.transaction(read)()
  }

  /** The oldest and newest post_changes rows (null when the log is empty). */
  changeSpan(): [number | null, number | null] {
    return this.st.changeSpan.get() as [number | null, number | null]
  }

  /** The newest post_deletions row (0 without any). */
  lastDeletion(): number {
    return Number(this.st.lastDeletion.get() ?? 0)
  }

  /** The newest `max` posts created at `since` or later, newest first (ties by id, larger first). */
  newest(since: number, max: number): CountRow[] {
    return this.st.newest.all(since, max) as CountRow[]
  }

  /** Up to `max` posts created between `since` and `until` (both included), newest first. */
  older(since: number, until: number, max: number): CountRow[] {
    return this.st.older.all(since, until, max) as CountRow[]
  }

  /** The ids of the posts logged in post_changes after a row, in log order (a post logged twice comes twice). */
  changedIds(seq: number): number[] {
    return this.st.changedIds.all(seq) as number[]
  }

  /** The current counts of the stored posts among some ids (`idsJson`: a JSON array), in id order; a post gone has no row. */
  countsById(idsJson: string): CountsRow[] {
    return this.st.countsById.all(idsJson) as CountsRow[]
  }

  /** Whole posts by id (`ids` as a JSON array); with `since`, only the ones created at `since` or later. */
  postsById(idsJson: string, since?: number): PostRow[] {
    return (since === undefined ? this.st.postsById.all(idsJson) : this.st.postsByIdSince.all(idsJson, since)) as PostRow[]
  }

  /** Whole posts with ids from `lo` to `hi` (both included) created at `since` or later, in id order. */
  postsInRange(lo: number, hi: number, since: number): PostRow[] {
    return this.st.postsInRange.all(lo, hi, since) as PostRow[]
  }

  /** Every stored static score of some posts (`urisJson`: a JSON array of URIs): [uri, instance, score (null: drop)]. */
  storedScores(urisJson: string): [string, string, number | null][] {
    return this.st.storedScores.all(urisJson) as [string, string, number | null][]
  }

  /** One instance's stored scores of some posts (`urisJson`: a JSON array of URIs): [uri, score (null: drop)]. */
  instanceScores(instance: string, urisJson: string): [string, number | null][] {
    return this.st.instanceScores.all(instance, urisJson) as [string, number | null][]
  }

  /** Saves an instance's static scores of posts (null: drop), aligned by position, in one write transaction. */
  saveScores(instance: string, uris: string[], scores: (number | null)[]): void {
    this.saveTx(instance, uris, scores)
  }

  /** Who a reader's lists leave out (consent, blocks), or null when no one (see ReaderFilter.excluder). */
  excluder(reader: string | null): ((author: string) => boolean) | null {
    return ReaderFilter.of(this.db).excluder(reader)
  }
}

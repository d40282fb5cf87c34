import type { Sqlite } from './db.ts'

/**
 * The change logs readers follow when they keep posts in memory: every post
 * inserted, deleted or whose counts changed goes into `post_changes` (by id),
 * and every deleted post's URI into `post_deletions`. Writers of `posts`
 * collect what they change in a `PostChanges` and flush it in the same
 * transaction as the change, once per batch.
 *
 * @NOTE explicit rather than triggers: any trigger on `posts` made the writer
 * 1.6–4× slower here (an INSERT trigger: 35k → 21k events/s; an UPDATE
 * trigger on the counts: 36k → 6–9k), and an edit (the post stored again
 * under a new id) is not a deletion of its URI.
 */
export class PostLog {
  private readonly db: Sqlite
  private readonly st

  constructor(db: Sqlite) {
    this.db = db
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      ids: p('INSERT INTO post_changes (post_id) SELECT value FROM json_each(?)'),
      uris: p('INSERT INTO post_changes (post_id) SELECT id FROM posts WHERE uri IN (SELECT value FROM json_each(?))'),
      deletions: p('INSERT INTO post_deletions (uri) SELECT value FROM json_each(?)'),
      authorIds: p('INSERT INTO post_changes (post_id) SELECT id FROM posts WHERE author = ?'),
      authorUris: p('INSERT INTO post_deletions (uri) SELECT uri FROM posts WHERE author = ?'),
    }
  }

  /** Logs what `changes` collected (call inside the transaction that made the changes). */
  flush(changes: PostChanges): void {
    if (changes.ids.length) this.st.ids.run(JSON.stringify(changes.ids))
    // @NOTE looked up after the updates: the posts exist (a count bump of a post not stored changes nothing)
    if (changes.counted.size) this.st.uris.run(JSON.stringify([...changes.counted]))
    if (changes.deleted.length) {
      this.st.deletions.run(JSON.stringify(changes.deleted))
      noteDeletions(this.db)
    }
    changes.clear()
  }

  /** Logs the deletion of every post of an author (call before deleting them, in the same transaction). */
  deletingAuthor(did: string): void {
    this.st.authorIds.run(did)
    this.st.authorUris.run(did)
    noteDeletions(this.db)
  }
}

const localDeletions = new WeakMap<Sqlite, number>()

function noteDeletions(db: Sqlite): void {
  localDeletions.set(db, (localDeletions.get(db) ?? 0) + 1)
}

/**
 * How many times deletions were logged through this connection (by this
 * process): readers that look at `post_deletions` only now and then look
 * again at once when this moves. Counted before the commit, so a rollback
 * only costs them a needless look.
 */
export function deletionsLoggedHere(db: Sqlite): number {
  return localDeletions.get(db) ?? 0
}

/** What one batch changed in `posts`, for PostLog.flush. */
export class PostChanges {
  /** ids inserted or gone (an edit: both) */
  ids: number[] = []
  /** URIs of posts whose counts changed */
  counted = new Set<string>()
  /** URIs of posts deleted */
  deleted: string[] = []

  /** A post inserted, or gone from `posts` without being deleted on the network (an edit's old id, an expiry). */
  touched(id: number): void {
    this.ids.push(id)
  }

  /** A post removed for good (not an edit). */
  removed(id: number, uri: string): void {
    this.ids.push(id)
    this.deleted.push(uri)
  }

  clear(): void {
    this.ids = []
    this.counted.clear()
    this.deleted = []
  }
}

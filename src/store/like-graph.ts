import { actorKey, postKey } from '../util/uri-hash.ts'
import type { Sqlite } from './db.ts'

/** `like_graph.kind` of a like and of a repost. */
export const LIKE = 0
export const REPOST = 1

/** `like_log.op` of an unlink (added to the kind) and of the drop of a post's every row. */
const UNLINK = 2
const DROP = 4

/** Rows in `like_log` past which the store folds it into `like_graph` (LikeGraphWriter.foldIfDue). */
export const LIKE_LOG_FOLD_ROWS = 50_000

/**
 * The like graph's changes not folded yet (`like_log`), replayed in order:
 * which (post, account, kind) they leave linked. An unlink and a drop also
 * removed their rows from `like_graph` when they were made, so the graph is
 * `like_graph` plus what this holds.
 */
export class LikeTail {
  /** post → account → kinds linked (bit 0 a like, bit 1 a repost) */
  readonly bySubject = new Map<number, Map<number, number>>()
  /** account → post → kinds linked */
  readonly byActor = new Map<number, Map<number, number>>()

  get empty(): boolean {
    return this.bySubject.size === 0
  }

  apply(subject: number, actor: number, op: number): void {
    if (op === DROP) {
      const actors = this.bySubject.get(subject)
      if (!actors) return
      for (const a of actors.keys()) this.unset(this.byActor, a, subject, 3)
      this.bySubject.delete(subject)
    } else if (op >= UNLINK) {
      this.unset(this.bySubject, subject, actor, 1 << (op - UNLINK))
      this.unset(this.byActor, actor, subject, 1 << (op - UNLINK))
    } else {
      const bit = 1 << op
      let m = this.bySubject.get(subject)
      if (!m) this.bySubject.set(subject, (m = new Map()))
      m.set(actor, (m.get(actor) ?? 0) | bit)
      let n = this.byActor.get(actor)
      if (!n) this.byActor.set(actor, (n = new Map()))
      n.set(subject, (n.get(subject) ?? 0) | bit)
    }
  }

  private unset(index: Map<number, Map<number, number>>, a: number, b: number, bits: number): void {
    const m = index.get(a)
    const v = m?.get(b)
    if (!m || v === undefined) return
    if (v & ~bits) m.set(b, v & ~bits)
    else if (m.delete(b) && m.size === 0) index.delete(a)
  }
}

/**
 * The writer's half of the like graph: keeps it in step with `engagements`,
 * inside the writer's transaction. Posts and accounts are known by 53-bit
 * hashes of their URI and DID (postKey, actorKey), so nothing is looked up.
 *
 * A batch's links, unlinks and drops are appended to `like_log` in one
 * statement at its end, in the order they were made; an unlink or a drop
 * also deletes its rows from `like_graph` at once (by its key: cheap, and
 * rare). The store folds the log into `like_graph` once it holds
 * LIKE_LOG_FOLD_ROWS rows (foldIfDue), in one transaction of its own.
 */
export class LikeGraphWriter {
  private readonly db: Sqlite
  private readonly st
  /** log rows waiting for the end of the batch, as [subject, actor, op] */
  private pending: [number, number, number][] = []
  /** the newest `like_log.id` this writer appended, and the last one folded (both as known here) */
  private lastId = 0
  private folded = 0

  constructor(db: Sqlite) {
    this.db = db
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      // @NOTE appended, not keyed: two random b-tree inserts per like (the key and the account index) cost the writer more than a
      // quarter of its rate; the fold inserts many at once, sorted
      append: p(`INSERT INTO like_log (subject, actor, op) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)`),
      unlink: p('DELETE FROM like_graph WHERE subject = ? AND actor = ? AND kind = ?'),
      dropSubject: p('DELETE FROM like_graph WHERE subject = ?'),
      lastId: p('SELECT max(id) FROM like_log').pluck(),
      // @NOTE the replay in one statement (sorted and grouped by SQLite, no row through JavaScript): a (post, account, kind) is
      // linked when its last link in the log is newer than its last unlink and than the last drop of its post
      fold: p(`WITH drops AS MATERIALIZED (SELECT subject, max(id) AS at FROM like_log WHERE op = ${DROP} GROUP BY subject),
        last AS (SELECT subject, actor, op % 2 AS kind, max(iif(op < ${UNLINK}, id, 0)) AS linked, max(iif(op >= ${UNLINK}, id, 0)) AS unlinked
          FROM like_log WHERE op < ${DROP} GROUP BY subject, actor, op % 2)
        INSERT INTO like_graph (subject, actor, kind)
        SELECT l.subject, l.actor, l.kind FROM last l LEFT JOIN drops d ON d.subject = l.subject
        WHERE l.linked > l.unlinked AND l.linked > coalesce(d.at, 0) ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING`),
      // @NOTE no WHERE: SQLite empties the table at once (the fold holds the write lock, so the log is all folded)
      forget: p('DELETE FROM like_log'),
      firstId: p('SELECT min(id) FROM like_log').pluck(),
      sequence: p(`SELECT seq FROM sqlite_sequence WHERE name = 'like_log'`).pluck(),
    }
    // ids are never reused (AUTOINCREMENT): an empty log starts after the last id it had
    const first = this.st.firstId.get() as number | null
    this.folded = first === null ? Number(this.st.sequence.get() ?? 0) : first - 1
    this.lastId = Number(this.st.lastId.get() ?? this.folded)
  }

  /** Records that `actor` (a DID) liked (or reposted) the post `subject`; written at flush(). */
  link(actor: string, subject: string, kind: 'like' | 'repost'): void {
    this.pending.push([postKey(subject), actorKey(actor), kind === 'like' ? LIKE : REPOST])
  }

  /** Forgets one (an unlike, an undone repost). */
  unlink(actor: string, subject: string, kind: string): void {
    const s = postKey(subject)
    const a = actorKey(actor)
    const k = kind === 'like' ? LIKE : REPOST
    this.st.unlink.run(s, a, k)
    // @NOTE a like and its unlike may be in one batch, or the like still in the log: the log keeps their order
    this.pending.push([s, a, k + UNLINK])
  }

  /** Forgets every like and repost of a post that is gone (swept by retention). */
  dropSubject(subject: string): void {
    const s = postKey(subject)
    this.st.dropSubject.run(s)
    this.pending.push([s, 0, DROP])
    this.flush()
  }

  /** Writes the changes made since the last flush. */
  flush(): void {
    if (!this.pending.length) return
    this.lastId = Number(this.st.append.run(JSON.stringify(this.pending)).lastInsertRowid)
    this.pending = []
  }

  /** Drops the changes not flushed yet (their batch failed and was rolled back). */
  discard(): void {
    this.pending = []
  }

  /** Whether the log holds LIKE_LOG_FOLD_ROWS rows or more (as far as this writer knows). */
  get foldDue(): boolean {
    return this.lastId - this.folded >= LIKE_LOG_FOLD_ROWS
  }

  /**
   * Folds the log into `like_graph`: replays it, inserts the rows it leaves
   * linked in key order, and deletes it, in one transaction (so a crash
   * leaves either the log or its fold, never neither). Outside any other
   * transaction; returns the rows inserted.
   */
  fold(): number {
    return this.db
      .transaction(() => {
        const upTo = this.st.lastId.get() as number | null
        if (upTo === null) return 0
        const n = this.st.fold.run().changes
        this.st.forget.run()
        this.folded = this.lastId = upTo
        return n
      })
      .immediate()
  }

  /** Folds the log when it is due (foldDue); for the store, between its transactions. */
  foldIfDue(): number {
    if (!this.foldDue || this.db.inTransaction) return 0
    try {
      return this.fold()
    } catch {
      // @NOTE the batches before it are stored: a fold that fails (a busy database) is tried again after the next one
      return 0
    }
  }
}

/** Bounds on what one reader's collaborative context reads. */
export interface LikeGraphLimits {
  /** followed accounts whose likes count (the newest follows) */
  follows: number
  /** the reader's own likes that look for like-minded readers (the newest first) */
  ownLikes: number
  /** likers read per post the reader liked */
  likersPerPost: number
  /** like-minded readers whose likes are used */
  neighbours: number
  /** likes read per like-minded reader */
  likesPerNeighbour: number
}

export const LIKE_GRAPH_LIMITS: LikeGraphLimits = { follows: 2_000, ownLikes: 1_000, likersPerPost: 200, neighbours: 300, likesPerNeighbour: 1_000 }

/**
 * The reading half: what the collaborative agents know about one reader.
 * Every read is bounded (LikeGraphLimits), so a reader who follows or likes
 * a great deal costs no more than the limits allow.
 */
export class LikeGraph {
  private readonly st
  private readonly limits: LikeGraphLimits
  /** `like_log` replayed up to `tailId` (kept between reads: each read replays only what was appended since) */
  private tail = new LikeTail()
  private tailId = 0

  constructor(db: Sqlite, limits: LikeGraphLimits = LIKE_GRAPH_LIMITS) {
    this.limits = limits
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      // @NOTE a follow's rkey is a TID: within one author, uri order is time order, newest last
      follows: p('SELECT subject FROM follows WHERE author = ? ORDER BY uri DESC LIMIT ?').pluck(),
      friendEngagement: p(`SELECT g.subject, count(DISTINCT g.actor) AS n FROM json_each(?) f JOIN like_graph g ON g.actor = f.value GROUP BY g.subject`).raw(),
      // @NOTE a reader's own likes, newest first (reader_likes keeps them by time, backfilled and from the firehose), then any
      // others the like graph holds (likes made before the account read a feed here)
      readerLikes: p('SELECT subject FROM reader_likes WHERE author = ? ORDER BY at DESC LIMIT ?').pluck(),
      ownLikes: p(`SELECT subject FROM like_graph WHERE actor = ? AND kind = ${LIKE} LIMIT ?`).pluck(),
      likers: p(`SELECT actor FROM like_graph WHERE subject = ? AND kind = ${LIKE} LIMIT ?`).pluck(),
      likesOf: p(`SELECT subject FROM like_graph WHERE actor = ? AND kind = ${LIKE} LIMIT ?`).pluck(),
      linked: p('SELECT 1 FROM like_graph WHERE subject = ? AND actor = ? LIMIT 1').pluck(),
      has: p('SELECT 1 FROM like_graph WHERE subject = ? AND actor = ? AND kind = ?').pluck(),
      count: p('SELECT count(*) FROM like_graph').pluck(),
      logHas: p('SELECT 1 FROM like_log WHERE id = ?').pluck(),
      logAfter: p('SELECT id, subject, actor, op FROM like_log WHERE id > ? ORDER BY id').raw(),
    }
  }

  /**
   * The log's rows linked and not folded yet. Rows only leave the log when
   * the store folds it: then the last row replayed is gone, and the log is
   * replayed from its start again.
   */
  private syncTail(): LikeTail {
    if (this.tailId && !this.st.logHas.get(this.tailId)) {
      this.tail = new LikeTail()
      this.tailId = 0
    }
    for (const [id, s, a, op] of this.st.logAfter.iterate(this.tailId) as Iterable<[number, number, number, number]>) {
      this.tail.apply(s, a, op)
      this.tailId = id
    }
    return this.tail
  }

  /** How many rows the like graph holds: `like_graph`'s and those the log adds (for status, tests and benchmarks). */
  size(): number {
    const tail = this.syncTail()
    let n = Number(this.st.count.get())
    for (const [s, actors] of tail.bySubject) {
      for (const [a, kinds] of actors) {
        if (kinds & 1 && !this.st.has.get(s, a, LIKE)) n++
        if (kinds & 2 && !this.st.has.get(s, a, REPOST)) n++
      }
    }
    return n
  }

  /** Posts (by postKey) that accounts the reader follows liked or reposted, with how many of them did. */
  friendEngagement(did: string): Map<number, number> {
    const out = new Map<number, number>()
    const follows = (this.st.follows.all(did, this.limits.follows) as string[]).map(actorKey)
    if (!follows.length) return out
    const tail = this.syncTail()
    for (const [subject, n] of this.st.friendEngagement.iterate(JSON.stringify(follows)) as Iterable<[number, number]>) out.set(subject, n)
    if (tail.empty) return out
    // the log's rows: each (post, account) counts once, and not again if like_graph has it
    for (const a of new Set(follows)) {
      const posts = tail.byActor.get(a)
      if (!posts) continue
      for (const subject of posts.keys()) if (!this.st.linked.get(subject, a)) out.set(subject, (out.get(subject) ?? 0) + 1)
    }
    return out
  }

  /**
   * Posts (by postKey) liked by readers whose likes overlap the reader's.
   * A like-minded reader's weight is the overlap, each shared post counting
   * less the more people liked it (1 / log₂(2 + likers)), divided by the
   * square root of how much that reader likes (so liking everything is no
   * way to be everyone's neighbour). A post's weight is the sum of its
   * like-minded likers'; posts the reader liked are left out.
   */
  coLikes(did: string): Map<number, number> {
    const out = new Map<number, number>()
    const me = actorKey(did)
    const L = this.limits
    const tail = this.syncTail()
    const own = new Set((this.st.readerLikes.all(did, L.ownLikes) as string[]).map(postKey))
    for (const post of withTail(this.st.ownLikes.all(me, L.ownLikes) as number[], tail.byActor.get(me), L.ownLikes, true))
      if (own.size < L.ownLikes) own.add(post)
    const mine = [...own]
    if (mine.length === 0) return out
    const overlap = new Map<number, number>()
    for (const post of mine) {
      const likers = withTail(this.st.likers.all(post, L.likersPerPost) as number[], tail.bySubject.get(post), L.likersPerPost)
      const w = 1 / Math.log2(2 + likers.length)
      for (const u of likers) if (u !== me) overlap.set(u, (overlap.get(u) ?? 0) + w)
    }
    const neighbours = [...overlap].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, L.neighbours)
    const liked = new Set(mine)
    for (const [u, o] of neighbours) {
      const likes = withTail(this.st.likesOf.all(u, L.likesPerNeighbour) as number[], tail.byActor.get(u), L.likesPerNeighbour)
      const weight = o / Math.sqrt(likes.length)
      for (const post of likes) {
        if (!liked.has(post)) out.set(post, (out.get(post) ?? 0) + weight)
      }
    }
    return out
  }
}

/**
 * The first `limit` keys (ascending, as `like_graph`'s b-trees give them) of
 * `rows` (`like_graph`'s first `limit`) and the log's likes in `linked`.
 * Unless `ordered`, keys come in any order when all of them fit (the
 * callers sum over them), which spares a sort per read.
 */
function withTail(rows: number[], linked: Map<number, number> | undefined, limit: number, ordered = false): number[] {
  if (!linked) return rows
  const all = new Set(rows)
  for (const [k, kinds] of linked) if (kinds & 1) all.add(k)
  if (all.size === rows.length) return rows
  if (!ordered && all.size <= limit) return [...all]
  return [...all].sort((a, b) => a - b).slice(0, limit)
}

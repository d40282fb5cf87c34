import { actorKey, postKey } from '../util/uri-hash.ts'
import type { Sqlite } from './db.ts'

/** `like_graph.kind` of a like and of a repost. */
export const LIKE = 0
export const REPOST = 1

/**
 * The writer's half of the like graph: keeps `like_graph` in step with
 * `engagements`, inside the writer's transaction. Posts and accounts are
 * known by 53-bit hashes of their URI and DID (postKey, actorKey), so
 * nothing is looked up; a batch's new rows go in one statement at its end.
 */
export class LikeGraphWriter {
  private readonly st
  /** rows waiting for the end of the batch, as [subject, actor, kind] */
  private pending: [number, number, number][] = []

  constructor(db: Sqlite) {
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      // @NOTE one statement for a batch's rows (a JSON array): one per like cost the writer a fifth of its rate
      link: p(`INSERT INTO like_graph (subject, actor, kind) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`),
      unlink: p('DELETE FROM like_graph WHERE subject = ? AND actor = ? AND kind = ?'),
      dropSubject: p('DELETE FROM like_graph WHERE subject = ?'),
    }
  }

  /** Records that `actor` (a DID) liked (or reposted) the post `subject`; written at flush(). */
  link(actor: string, subject: string, kind: 'like' | 'repost'): void {
    this.pending.push([postKey(subject), actorKey(actor), kind === 'like' ? LIKE : REPOST])
  }

  /** Forgets one (an unlike, an undone repost). */
  unlink(actor: string, subject: string, kind: string): void {
    // @NOTE a like and its unlike may be in one batch: the like is written first
    this.flush()
    this.st.unlink.run(postKey(subject), actorKey(actor), kind === 'like' ? LIKE : REPOST)
  }

  /** Forgets every like and repost of a post that is gone (swept by retention). */
  dropSubject(subject: string): void {
    this.st.dropSubject.run(postKey(subject))
  }

  /** Writes the rows linked since the last flush. */
  flush(): void {
    if (!this.pending.length) return
    this.st.link.run(JSON.stringify(this.pending))
    this.pending = []
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
    }
  }

  /** Posts (by postKey) that accounts the reader follows liked or reposted, with how many of them did. */
  friendEngagement(did: string): Map<number, number> {
    const out = new Map<number, number>()
    const follows = (this.st.follows.all(did, this.limits.follows) as string[]).map(actorKey)
    if (!follows.length) return out
    for (const [subject, n] of this.st.friendEngagement.iterate(JSON.stringify(follows)) as Iterable<[number, number]>) out.set(subject, n)
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
    const own = new Set((this.st.readerLikes.all(did, L.ownLikes) as string[]).map(postKey))
    for (const post of this.st.ownLikes.all(me, L.ownLikes) as number[]) if (own.size < L.ownLikes) own.add(post)
    const mine = [...own]
    if (mine.length === 0) return out
    const overlap = new Map<number, number>()
    for (const post of mine) {
      const likers = this.st.likers.all(post, L.likersPerPost) as number[]
      const w = 1 / Math.log2(2 + likers.length)
      for (const u of likers) if (u !== me) overlap.set(u, (overlap.get(u) ?? 0) + w)
    }
    const neighbours = [...overlap].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, L.neighbours)
    const liked = new Set(mine)
    for (const [u, o] of neighbours) {
      const likes = this.st.likesOf.all(u, L.likesPerNeighbour) as number[]
      const weight = o / Math.sqrt(likes.length)
      for (const post of likes) {
        if (!liked.has(post)) out.set(post, (out.get(post) ?? 0) + weight)
      }
    }
    return out
  }
}

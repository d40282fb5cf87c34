import { postKey } from '../util/uri-hash.ts'
import type { Sqlite } from './db.ts'

/** `like_graph.kind` of a like and of a repost. */
export const LIKE = 0
export const REPOST = 1

/** How many account ids the writer keeps in memory (DID → `actors.id`). */
const ACTOR_CACHE = 200_000

/**
 * The writer's half of the like graph: keeps `like_graph` in step with
 * `engagements`, inside the writer's transaction. Account ids come from
 * `actors`, through a bounded in-memory map (most likes come from accounts
 * seen moments ago).
 */
export class LikeGraphWriter {
  private readonly st
  private readonly ids = new Map<string, number>()

  constructor(db: Sqlite) {
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      actorId: p('SELECT id FROM actors WHERE did = ?').pluck(),
      newActor: p('INSERT INTO actors (did) VALUES (?)'),
      link: p('INSERT INTO like_graph (subject, actor, kind) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      unlink: p('DELETE FROM like_graph WHERE subject = ? AND actor = ? AND kind = ?'),
    }
  }

  /** The account's id, made on first sight. */
  actor(did: string): number {
    let id = this.ids.get(did)
    if (id !== undefined) return id
    id = (this.st.actorId.get(did) as number | undefined) ?? Number(this.st.newActor.run(did).lastInsertRowid)
    // @NOTE ids are never reused (actors rows stay), so a stale entry cannot exist; dropping the oldest keeps it bounded
    if (this.ids.size >= ACTOR_CACHE) this.ids.delete(this.ids.keys().next().value!)
    this.ids.set(did, id)
    return id
  }

  /** Records that `actor` liked (or reposted) the post `subject`. */
  link(actor: number, subject: string, kind: 'like' | 'repost'): void {
    this.st.link.run(postKey(subject), actor, kind === 'like' ? LIKE : REPOST)
  }

  /** Forgets it (an unlike, or the engagement swept with its post). */
  unlink(actor: number | null, subject: string, kind: string): void {
    if (actor !== null) this.st.unlink.run(postKey(subject), actor, kind === 'like' ? LIKE : REPOST)
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
      actorId: p('SELECT id FROM actors WHERE did = ?').pluck(),
      // @NOTE a follow's rkey is a TID: within one author, uri order is time order, newest last
      friendEngagement: p(`WITH f AS (SELECT a.id FROM follows f JOIN actors a ON a.did = f.subject WHERE f.author = ? ORDER BY f.uri DESC LIMIT ?)
        SELECT g.subject, count(DISTINCT g.actor) AS n FROM f JOIN like_graph g ON g.actor = f.id GROUP BY g.subject`).raw(),
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
    for (const [subject, n] of this.st.friendEngagement.iterate(did, this.limits.follows) as Iterable<[number, number]>) out.set(subject, n)
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
    const me = this.st.actorId.get(did) as number | undefined
    if (me === undefined) return out
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

import type { SubscriberContext } from '../score/sdk.ts'
import type { Sqlite } from './db.ts'
import { LikeGraph } from './like-graph.ts'

/** The graph around subscribers, as the writer keeps it from the firehose: follows, and the like graph. */
export class FollowGraph {
  private readonly st
  private readonly likes: LikeGraph

  constructor(db: Sqlite) {
    this.st = {
      follows: db.prepare('SELECT subject FROM follows WHERE author = ?').pluck(),
      followers: db.prepare('SELECT author FROM follows WHERE subject = ?').pluck(),
    }
    this.likes = new LikeGraph(db)
  }

  /**
   * The reader's context for personal agents. The like graph's parts are read
   * on first use, so a mix whose agents never look at them does not pay.
   */
  context(did: string): SubscriberContext {
    const likes = this.likes
    let friendEngagement: Map<number, number> | undefined
    let coLikes: Map<number, number> | undefined
    return {
      did,
      follows: new Set(this.st.follows.all(did) as string[]),
      followers: new Set(this.st.followers.all(did) as string[]),
      get friendEngagement() {
        return (friendEngagement ??= likes.friendEngagement(did))
      },
      get coLikes() {
        return (coLikes ??= likes.coLikes(did))
      },
    }
  }
}

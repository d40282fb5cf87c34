import type { SubscriberContext } from '../score/sdk.ts'
import type { Sqlite } from './db.ts'

/** The follow graph around subscribers, as the writer keeps it from the firehose. */
export class FollowGraph {
  private readonly st

  constructor(db: Sqlite) {
    this.st = {
      follows: db.prepare('SELECT subject FROM follows WHERE author = ?').pluck(),
      followers: db.prepare('SELECT author FROM follows WHERE subject = ?').pluck(),
    }
  }

  /** The reader's context for personal agents. */
  context(did: string): SubscriberContext {
    return {
      did,
      follows: new Set(this.st.follows.all(did) as string[]),
      followers: new Set(this.st.followers.all(did) as string[]),
    }
  }
}

import type { FeedbackEvent, Interaction } from '../rank/feedback.ts'
import type { Sqlite } from './db.ts'

export interface StoredInteraction extends Interaction {
  feed: string
  reqId: string | null
  undone: boolean
}

interface Row {
  id: number
  feed: string
  post_uri: string
  event: FeedbackEvent
  feed_context: string | null
  req_id: string | null
  at: number
  undone: number
}

const fromRow = (r: Row): StoredInteraction => ({
  id: r.id,
  feed: r.feed,
  postUri: r.post_uri,
  event: r.event,
  feedContext: r.feed_context,
  reqId: r.req_id,
  at: r.at,
  undone: r.undone === 1,
})

/** How far back interactions still count (older ones are pruned). */
export const INTERACTION_HORIZON_MS = 30 * 86_400_000

/** Interactions kept per reader and feed unless told otherwise (SKYSIFT_FEEDBACK_PER_FEED). */
export const DEFAULT_FEEDBACK_PER_FEED = 2000

/**
 * Readers' feedback, per feed: at most `maxPerFeed` interactions per reader
 * and feed (the oldest go first), so storing a batch costs the batch and
 * reading a reader's feedback costs at most the cap, however much they send.
 */
export class InteractionStore {
  private readonly st
  private readonly tx
  readonly maxPerFeed: number

  constructor(db: Sqlite, opts: { maxPerFeed?: number } = {}) {
    this.maxPerFeed = opts.maxPerFeed ?? DEFAULT_FEEDBACK_PER_FEED
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      insert: p('INSERT INTO interactions (subscriber, feed, post_uri, event, feed_context, req_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      // @NOTE "seen" is recorded once per item (the AppView reports it on every view): the unique index interactions_seen skips a repeat
      insertSeen: p('INSERT OR IGNORE INTO interactions (subscriber, feed, post_uri, event, feed_context, req_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      active: p('SELECT * FROM interactions WHERE subscriber = ? AND feed = ? AND undone = 0 AND at > ? ORDER BY id'),
      recent: p("SELECT * FROM interactions WHERE subscriber = ? AND feed = ? AND event != 'seen' ORDER BY id DESC LIMIT ?"),
      state: p('SELECT n, version FROM interaction_state WHERE subscriber = ? AND feed = ?').raw(),
      trim: p('DELETE FROM interactions WHERE id IN (SELECT id FROM interactions WHERE subscriber = ? AND feed = ? ORDER BY id LIMIT ?)'),
      undo: p('UPDATE interactions SET undone = 1 WHERE id = ? AND subscriber = ? AND undone = 0'),
      get: p('SELECT * FROM interactions WHERE id = ? AND subscriber = ?'),
      prune: p('DELETE FROM interactions WHERE at < ?'),
    }
    this.tx = db.transaction((rows: [string, string, string, FeedbackEvent, string | null, string | null, number][]) => {
      let n = 0
      const touched = new Map<string, [string, string]>()
      for (const r of rows) {
        if (!(r[3] === 'seen' ? this.st.insertSeen : this.st.insert).run(...r).changes) continue
        n++
        touched.set(`${r[0]} ${r[1]}`, [r[0], r[1]])
      }
      // the oldest beyond the cap go (interaction_state counts them, kept by triggers)
      for (const [subscriber, feed] of touched.values()) {
        const [count] = (this.st.state.get(subscriber, feed) as [number, number] | undefined) ?? [0]
        if (count > this.maxPerFeed) this.st.trim.run(subscriber, feed, count - this.maxPerFeed)
      }
      return n
    })
  }

  /** Stores a batch of interactions; returns how many were new. */
  add(
    subscriber: string,
    items: { feed: string; postUri: string; event: FeedbackEvent; feedContext: string | null; reqId: string | null }[],
    now = Date.now(),
  ): number {
    return this.tx(items.map((i) => [subscriber, i.feed, i.postUri, i.event, i.feedContext, i.reqId, now]))
  }

  /** Interactions that still count for a reader's feed. */
  active(subscriber: string, feed: string, now = Date.now()): Interaction[] {
    return (this.st.active.all(subscriber, feed, now - INTERACTION_HORIZON_MS) as Row[]).map(fromRow)
  }

  /** The reader's latest "more"/"less" (including undone ones), newest first. */
  recent(subscriber: string, feed: string, limit = 50): StoredInteraction[] {
    return (this.st.recent.all(subscriber, feed, limit) as Row[]).map(fromRow)
  }

  /** Changes whenever the reader's feedback for a feed changes; one primary-key read. */
  signature(subscriber: string, feed: string): string {
    const r = this.st.state.get(subscriber, feed) as [number, number] | undefined
    return r ? `${r[0]}.${r[1]}` : '0.0'
  }

  /** How many interactions are stored for a reader's feed (at most maxPerFeed); one primary-key read. */
  count(subscriber: string, feed: string): number {
    const r = this.st.state.get(subscriber, feed) as [number, number] | undefined
    return r ? r[0] : 0
  }

  /** Undoes one of the reader's interactions; false when it is not theirs or already undone. */
  undo(subscriber: string, id: number): StoredInteraction | null {
    if (!this.st.undo.run(id, subscriber).changes) return null
    const r = this.st.get.get(id, subscriber) as Row | undefined
    return r ? fromRow(r) : null
  }

  prune(now = Date.now()): number {
    return this.st.prune.run(now - INTERACTION_HORIZON_MS).changes
  }
}

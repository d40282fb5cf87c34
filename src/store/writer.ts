import type { IngestEvent, PostEvent } from '../ingest/events.ts'
import { COLLECTIONS } from '../ingest/events.ts'
import type { Score } from '../score/sdk.ts'
import type { Sqlite } from './db.ts'

/** A scored batch on its way to SQLite. */
export interface StoreBatch {
  /** source + cursor range: the same batch always has the same id */
  id: string
  events: IngestEvent[]
  /** static agent scores: [post uri, agent instance key, score] */
  scores: [string, string, Score][]
  /** event time (ms) of the newest event in the batch */
  eventTime: number
}

export interface WriteResult {
  posts: number
  deleted: number
  likes: number
  reposts: number
  follows: number
  accounts: number
  skipped: number
  scores: number
}

const INACTIVE = new Set(['deleted', 'takendown', 'suspended', 'deactivated'])

/**
 * The one writer: applies a batch in a single transaction. Every statement
 * is an upsert or guarded by a lookup, so applying the same batch twice
 * leaves the same rows (replays and retries are harmless), and a create that
 * arrives after its delete stays deleted.
 */
export class BatchWriter {
  private readonly db: Sqlite
  private readonly st
  private readonly tx: (b: StoreBatch) => WriteResult

  constructor(db: Sqlite) {
    this.db = db
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      isTombstoned: p('SELECT 1 FROM tombstones WHERE uri = ?').pluck(),
      isInactive: p('SELECT 1 FROM inactive_accounts WHERE did = ?').pluck(),
      postCid: p('SELECT cid FROM posts WHERE uri = ?').pluck(),
      postExists: p('SELECT 1 FROM posts WHERE uri = ?').pluck(),
      upsertPost: p(`INSERT INTO posts (uri, cid, author, created_at, indexed_at, text, langs, reply_root, reply_parent, embed, quote, tags, labels)
        VALUES (@uri, @cid, @author, @createdAt, @indexedAt, @text, @langs, @replyRoot, @replyParent, @embed, @quote, @tags, @labels)
        ON CONFLICT(uri) DO UPDATE SET cid = excluded.cid, text = excluded.text, langs = excluded.langs, reply_root = excluded.reply_root,
          reply_parent = excluded.reply_parent, embed = excluded.embed, quote = excluded.quote, tags = excluded.tags, labels = excluded.labels`),
      dropScores: p('DELETE FROM agent_scores WHERE post_uri = ?'),
      dropItems: p('DELETE FROM feed_items WHERE post_uri = ?'),
      deletePost: p('DELETE FROM posts WHERE uri = ?'),
      tombstone: p('INSERT INTO tombstones (uri, at) VALUES (?, ?) ON CONFLICT(uri) DO NOTHING'),
      insertEngagement: p('INSERT INTO engagements (uri, kind, author, subject) VALUES (?, ?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      getEngagement: p('SELECT kind, subject FROM engagements WHERE uri = ?'),
      deleteEngagement: p('DELETE FROM engagements WHERE uri = ?'),
      bumpLike: p('UPDATE posts SET like_count = max(0, like_count + ?) WHERE uri = ?'),
      bumpRepost: p('UPDATE posts SET repost_count = max(0, repost_count + ?) WHERE uri = ?'),
      isSubscriber: p('SELECT 1 FROM mixes WHERE subscriber = ? LIMIT 1').pluck(),
      insertFollow: p('INSERT INTO follows (uri, author, subject) VALUES (?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      deleteFollow: p('DELETE FROM follows WHERE uri = ?'),
      markInactive: p('INSERT INTO inactive_accounts (did, status, at) VALUES (?, ?, ?) ON CONFLICT(did) DO UPDATE SET status = excluded.status, at = excluded.at'),
      markActive: p('DELETE FROM inactive_accounts WHERE did = ?'),
      purgeItems: p('DELETE FROM feed_items WHERE post_uri IN (SELECT uri FROM posts WHERE author = ?)'),
      purgeScores: p('DELETE FROM agent_scores WHERE post_uri IN (SELECT uri FROM posts WHERE author = ?)'),
      purgePosts: p('DELETE FROM posts WHERE author = ?'),
      upsertScore: p(`INSERT INTO agent_scores (instance, post_uri, score) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM posts WHERE uri = ?)
        ON CONFLICT(instance, post_uri) DO UPDATE SET score = excluded.score`),
      bumpCounter: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
      maxCounter: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)'),
    }
    this.tx = db.transaction((b: StoreBatch) => this.apply(b))
  }

  /** Applies one batch atomically. */
  write(batch: StoreBatch): WriteResult {
    return this.tx(batch)
  }

  private apply(b: StoreBatch): WriteResult {
    const st = this.st
    const now = Date.now()
    const r: WriteResult = { posts: 0, deleted: 0, likes: 0, reposts: 0, follows: 0, accounts: 0, skipped: 0, scores: 0 }
    for (const e of b.events) {
      switch (e.t) {
        case 'post':
          if (this.writePost(e, now)) r.posts++
          else r.skipped++
          break
        case 'like':
        case 'repost': {
          if (st.isTombstoned.get(e.uri) || !st.postExists.get(e.subject)) {
            r.skipped++
            break
          }
          if (st.insertEngagement.run(e.uri, e.t, e.author, e.subject).changes) {
            ;(e.t === 'like' ? st.bumpLike : st.bumpRepost).run(1, e.subject)
            if (e.t === 'like') r.likes++
            else r.reposts++
          }
          break
        }
        case 'follow':
          if (!st.isTombstoned.get(e.uri) && st.isSubscriber.get(e.author)) {
            st.insertFollow.run(e.uri, e.author, e.subject)
            r.follows++
          } else r.skipped++
          break
        case 'delete':
          st.tombstone.run(e.uri, now)
          if (e.collection === COLLECTIONS.post) {
            st.dropItems.run(e.uri)
            st.dropScores.run(e.uri)
            if (st.deletePost.run(e.uri).changes) r.deleted++
          } else if (e.collection === COLLECTIONS.follow) {
            st.deleteFollow.run(e.uri)
          } else {
            const g = st.getEngagement.get(e.uri) as { kind: string; subject: string } | undefined
            if (g) {
              st.deleteEngagement.run(e.uri)
              ;(g.kind === 'like' ? st.bumpLike : st.bumpRepost).run(-1, g.subject)
            }
          }
          break
        case 'account':
          r.accounts++
          if (!e.active && INACTIVE.has(e.status ?? '')) {
            st.markInactive.run(e.did, e.status, now)
            st.purgeItems.run(e.did)
            st.purgeScores.run(e.did)
            r.deleted += st.purgePosts.run(e.did).changes
          } else if (e.active) {
            st.markActive.run(e.did)
          }
          break
      }
    }
    for (const [uri, key, score] of b.scores) {
      // @NOTE NULL stores a drop; "no opinion" (a failed agent run) is not stored, so the next refresh asks again
      if (score === null) continue
      r.scores += st.upsertScore.run(key, uri, score === 'drop' ? null : score, uri).changes
    }
    st.bumpCounter.run('events_stored', b.events.length)
    st.bumpCounter.run('posts_stored', r.posts)
    st.bumpCounter.run('posts_deleted', r.deleted)
    st.bumpCounter.run('engagements_stored', r.likes + r.reposts)
    st.maxCounter.run('last_event_time', b.eventTime)
    return r
  }

  private writePost(e: PostEvent, now: number): boolean {
    const st = this.st
    if (st.isTombstoned.get(e.uri) || st.isInactive.get(e.author)) return false
    const oldCid = st.postCid.get(e.uri) as string | undefined
    if (oldCid !== undefined && oldCid !== e.cid) st.dropScores.run(e.uri)
    st.upsertPost.run({
      uri: e.uri,
      cid: e.cid,
      author: e.author,
      createdAt: e.createdAt,
      indexedAt: now,
      text: e.text,
      langs: JSON.stringify(e.langs),
      replyRoot: e.replyRoot,
      replyParent: e.replyParent,
      embed: e.embed,
      quote: e.quote,
      tags: JSON.stringify(e.tags),
      labels: JSON.stringify(e.labels),
    })
    return true
  }
}

import type { AccountEvent, MixEvent, PostEvent } from '../contracts/events.ts'
import { COLLECTIONS } from '../contracts/events.ts'
import { parseAtUri, tidTimeMs } from '../util/at-ids.ts'
import type { ScoreValue, StoreBatch } from '../contracts/jobs.ts'
import { canonicalJson, shortHash } from '../util/canonical.ts'
import type { Sqlite } from './db.ts'
import { engagementKey } from './engagement-key.ts'
import { LikeGraphWriter } from './like-graph.ts'
import { PostChanges, PostLog } from './post-log.ts'
import { ReaderGraphWriter } from './reader-graph-writer.ts'

/** Every static score of a batch as [post uri, agent instance key, score], whichever form it came in. */
export function* scoreEntries(b: StoreBatch): Generator<[string, string, ScoreValue]> {
  yield* b.scores
  if (!b.postScores) return
  const { keys, rows } = b.postScores
  for (const row of rows) {
    const e = b.events[row[0]]
    // @NOTE a row that does not point at a post of the batch is not a score of anything: left out
    if (e?.t !== 'post') continue
    for (let k = 0; k < keys.length; k++) yield [e.uri, keys[k], row[k + 1] ?? null]
  }
}

/** A post's columns as `posts` and `withheld_posts` hold them (lists as JSON). */
interface StoredPost {
  uri: string
  cid: string
  author: string
  createdAt: number
  text: string
  langs: string
  replyRoot: string | null
  replyParent: string | null
  embed: string | null
  quote: string | null
  tags: string
  labels: string
  rev: string
}

export interface WriteResult {
  posts: number
  deleted: number
  likes: number
  reposts: number
  follows: number
  /** mix records stored or updated */
  mixes: number
  accounts: number
  skipped: number
  scores: number
}

/** Account statuses whose posts are not shown (kept aside in `withheld_posts` until the account is active again). */
export const INACTIVE = new Set(['deleted', 'takendown', 'suspended', 'deactivated'])

/**
 * Whether a version `rev` replaces the stored one (`stored`). Versions are
 * TIDs that sort as the network made the changes (a commit's repo revision,
 * or an event's time: see PostEvent.rev, AccountEvent.rev); an equal one is
 * the same version again. A version-less write ('': queued before versions
 * existed) applies as it arrives.
 */
export const replaces = (rev: string, stored: string): boolean => rev === '' || rev > stored

/**
 * How much older than the batch a post may be for a like (or repost) of it
 * to be kept while the post itself is not stored yet. Batches are stored out
 * of order (parallel score workers, retries after a crash), so a like often
 * arrives a few seconds to minutes before its post; its row waits and the
 * post counts it when it comes. Likes of posts older than this (minted
 * before the ingest started, or never seen) are not kept; retention removes
 * waiting rows whose post never came once they are this old.
 */
export const PENDING_ENGAGEMENT_MS = 60 * 60_000

/** Whether an engagement of `subject`, seen in a batch of `eventTime`, may wait for its post. */
export function mayAwaitPost(subject: string, eventTime: number): boolean {
  const rkey = parseAtUri(subject)?.rkey
  const minted = rkey === undefined ? null : tidTimeMs(rkey)
  return minted !== null && minted >= eventTime - PENDING_ENGAGEMENT_MS && minted <= eventTime + PENDING_ENGAGEMENT_MS
}

/**
 * The fingerprint a record mix is stored with. The writer has no agent
 * catalog, so this is not the ranking fingerprint resolveMix gives: it only
 * has to differ whenever the entries differ, since FeedService caches resolved
 * mixes by (feed, stored fingerprint). The prefix keeps it apart from those.
 */
export const recordMixFingerprint = (agents: unknown): string => `rec-${shortHash(canonicalJson(agents), 16)}`

/**
 * The one writer: applies a batch in a single transaction. Every statement
 * is an upsert or guarded by a lookup, so applying the same batch twice
 * leaves the same rows (replays and retries are harmless).
 *
 * Batches reach it in any order: a score worker runs two jobs at once, and a
 * killed worker's job comes back only when its lock expires, after later
 * ones. So every fact an event can change is applied by its order on the
 * network, never by arrival: it is stored with its version (`rev`) and
 * only a newer version replaces it (`replaces`): posts and mix records by
 * the commit's revision, an account's status by the event's time; deletes
 * are final (tombstones: a create that arrives after its delete stays
 * deleted); an account's newest status decides whether its posts are in
 * `posts` or kept aside in `withheld_posts`, where they wait, newest version
 * too, until a newer event says it is active; likes and reposts are counted
 * once whenever their post comes (`waiting_engagements`). Whatever the order,
 * the same batches leave the same store: a late batch adds what is missing
 * and never undoes what is newer (test/store-order.test.ts).
 */
export class BatchWriter {
  private readonly db: Sqlite
  private readonly st
  private readonly tx: (b: StoreBatch) => WriteResult
  private readonly log: PostLog
  /** what the batch being applied changed in `posts` (logged at its end, inside its savepoint) */
  private readonly changed = new PostChanges()
  private readonly likeGraph: LikeGraphWriter
  /** readers' blocks, block lists and likes; authors' consent */
  private readonly graph: ReaderGraphWriter

  constructor(db: Sqlite) {
    this.db = db
    this.log = new PostLog(db)
    this.likeGraph = new LikeGraphWriter(db)
    this.graph = new ReaderGraphWriter(db)
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      isTombstoned: p('SELECT 1 FROM tombstones WHERE uri = ?').pluck(),
      accountRow: p('SELECT status, rev FROM account_status WHERE did = ?'),
      postRow: p('SELECT id, cid, rev, like_count AS likes, repost_count AS reposts FROM posts WHERE uri = ?'),
      setPostRev: p('UPDATE posts SET rev = ? WHERE id = ?'),
      postExists: p('SELECT 1 FROM posts WHERE uri = ?').pluck(),
      waitingCounts: p(`SELECT coalesce(sum(n) FILTER (WHERE kind = 'like'), 0) AS likes, coalesce(sum(n) FILTER (WHERE kind = 'repost'), 0) AS reposts
        FROM waiting_engagements WHERE subject = ?`),
      dropWaiting: p('DELETE FROM waiting_engagements WHERE subject = ?'),
      // @NOTE a plain INSERT: a post already stored is looked up first (INSERT … ON CONFLICT would rewrite the row on every replay)
      insertPost:
        p(`INSERT INTO posts (uri, cid, author, created_at, indexed_at, text, langs, reply_root, reply_parent, embed, quote, tags, labels, like_count, repost_count, rev)
        VALUES (@uri, @cid, @author, @createdAt, @indexedAt, @text, @langs, @replyRoot, @replyParent, @embed, @quote, @tags, @labels, @likes, @reposts, @rev)`),
      isWithheld: p('SELECT 1 FROM withheld_posts WHERE uri = ?').pluck(),
      withheldRev: p('SELECT rev FROM withheld_posts WHERE uri = ?').pluck(),
      withhold: p(`INSERT INTO withheld_posts (uri, cid, author, created_at, text, langs, reply_root, reply_parent, embed, quote, tags, labels, rev)
        VALUES (@uri, @cid, @author, @createdAt, @text, @langs, @replyRoot, @replyParent, @embed, @quote, @tags, @labels, @rev)
        ON CONFLICT(uri) DO UPDATE SET cid = excluded.cid, created_at = excluded.created_at, text = excluded.text, langs = excluded.langs,
          reply_root = excluded.reply_root, reply_parent = excluded.reply_parent, embed = excluded.embed, quote = excluded.quote,
          tags = excluded.tags, labels = excluded.labels, rev = excluded.rev`),
      withholdAuthor: p(`INSERT INTO withheld_posts (uri, cid, author, created_at, text, langs, reply_root, reply_parent, embed, quote, tags, labels, rev)
        SELECT uri, cid, author, created_at, text, langs, reply_root, reply_parent, embed, quote, tags, labels, rev FROM posts WHERE author = ?
        ON CONFLICT(uri) DO UPDATE SET cid = excluded.cid, created_at = excluded.created_at, text = excluded.text, langs = excluded.langs,
          reply_root = excluded.reply_root, reply_parent = excluded.reply_parent, embed = excluded.embed, quote = excluded.quote,
          tags = excluded.tags, labels = excluded.labels, rev = excluded.rev
        WHERE excluded.rev > withheld_posts.rev`),
      withheldOf:
        p(`SELECT uri, cid, author, created_at AS createdAt, text, langs, reply_root AS replyRoot, reply_parent AS replyParent, embed, quote, tags, labels, rev
        FROM withheld_posts WHERE author = ?`),
      unwithholdAuthor: p('DELETE FROM withheld_posts WHERE author = ?'),
      unwithhold: p('DELETE FROM withheld_posts WHERE uri = ?'),
      deletePostId: p('DELETE FROM posts WHERE id = ?'),
      dropScores: p('DELETE FROM agent_scores WHERE post_uri = ?'),
      tombstone: p('INSERT INTO tombstones (uri, at) VALUES (?, ?) ON CONFLICT(uri) DO NOTHING'),
      insertEngagement: p('INSERT INTO engagements (key, kind, subject) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING'),
      getEngagement: p('SELECT kind, subject FROM engagements WHERE key = ?'),
      deleteEngagement: p('DELETE FROM engagements WHERE key = ?'),
      await: p('INSERT INTO waiting_engagements (subject, key, kind) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      unwait: p('DELETE FROM waiting_engagements WHERE subject = ? AND key = ? AND kind = ?'),
      uncarry: p('UPDATE waiting_engagements SET n = n - 1 WHERE subject = ? AND key = 0 AND kind = ? AND n > 0'),
      // @NOTE the counts of an author's posts, kept before a purge: the post counts them again if it comes back
      carryPurged: p(`INSERT INTO waiting_engagements (subject, key, kind, n)
        SELECT * FROM (SELECT uri, 0, 'like', like_count FROM posts WHERE author = @did AND like_count > 0
          UNION ALL SELECT uri, 0, 'repost', repost_count FROM posts WHERE author = @did AND repost_count > 0) WHERE true
        ON CONFLICT(subject, key, kind) DO UPDATE SET n = n + excluded.n`),
      bumpLike: p('UPDATE posts SET like_count = max(0, like_count + ?) WHERE uri = ?'),
      bumpRepost: p('UPDATE posts SET repost_count = max(0, repost_count + ?) WHERE uri = ?'),
      postId: p('SELECT id FROM posts WHERE uri = ?').pluck(),
      isSubscriber: p(
        'SELECT 1 FROM (SELECT ? AS did) r WHERE EXISTS (SELECT 1 FROM mixes WHERE subscriber = r.did) OR EXISTS (SELECT 1 FROM readers WHERE did = r.did)',
      ).pluck(),
      insertFollow: p('INSERT INTO follows (uri, author, subject) VALUES (?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      deleteFollow: p('DELETE FROM follows WHERE uri = ?'),
      mixRecordFeed: p('SELECT author, feed FROM mix_records WHERE uri = ?'),
      // @NOTE batches can arrive out of order (parallel scoring, retries): an older version never overwrites a newer one
      upsertMixRecord: p(`INSERT INTO mix_records (uri, author, feed, agents, created_at, rev) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(uri) DO UPDATE SET feed = excluded.feed, agents = excluded.agents, created_at = excluded.created_at, rev = excluded.rev
        WHERE excluded.rev >= mix_records.rev`),
      deleteMixRecord: p('DELETE FROM mix_records WHERE uri = ?'),
      // @NOTE within one author and collection the uri orders as the rkey does (TIDs sort by time)
      newestMixRecord: p('SELECT agents FROM mix_records WHERE author = ? AND feed = ? ORDER BY created_at DESC, uri DESC LIMIT 1'),
      // @NOTE updated_at moves (strictly) only when the entries change: readers of `mixes` use it to notice a change, and a replay is no change
      putRecordMix: p(`INSERT INTO mixes (subscriber, feed, source, agents, fingerprint, updated_at) VALUES (?, ?, 'record', ?, ?, ?)
        ON CONFLICT(subscriber, feed, source) DO UPDATE SET agents = excluded.agents, fingerprint = excluded.fingerprint,
          updated_at = max(excluded.updated_at, mixes.updated_at + 1)
        WHERE mixes.fingerprint <> excluded.fingerprint`),
      dropRecordMix: p(`DELETE FROM mixes WHERE subscriber = ? AND feed = ? AND source = 'record'`),
      setAccount: p(
        'INSERT INTO account_status (did, status, rev) VALUES (?, ?, ?) ON CONFLICT(did) DO UPDATE SET status = excluded.status, rev = excluded.rev',
      ),
      purgePosts: p('DELETE FROM posts WHERE author = ?'),
      // @NOTE the post is checked first (INSERT … SELECT … WHERE EXISTS was 4× slower than the two statements)
      upsertScores: p(`INSERT INTO agent_scores (instance, post_uri, score) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true
        ON CONFLICT(instance, post_uri) DO UPDATE SET score = excluded.score`),
      settled: p('DELETE FROM pending_batches WHERE id = ?'),
      bumpCounter: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
      maxCounter: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)'),
    }
    const tx = db.transaction((b: StoreBatch) => this.apply(b))
    // @NOTE IMMEDIATE: the write lock is taken (waiting through busy_timeout) before the first read, so a commit
    // by another process in between cannot fail the batch with SQLITE_BUSY
    this.tx = (b) => tx.immediate(b)
  }

  /** Forgets a batch that will never be stored (failed for good): an ingest rewind need not read it again. */
  settle(id: string): void {
    this.st.settled.run(id)
  }

  /** Applies one batch atomically. */
  write(batch: StoreBatch): WriteResult {
    const r = this.tx(batch)
    this.likeGraph.foldIfDue()
    return r
  }

  /**
   * Applies several batches in one SQLite transaction (one commit instead of
   * one per batch). Each batch goes through `write` (a savepoint inside the
   * transaction), so a batch that fails leaves no trace and the others are
   * still stored; its error is returned in its place. When the transaction as
   * a whole cannot be committed, this throws and nothing is stored.
   */
  writeGroup(batches: StoreBatch[]): ({ ok: true; result: WriteResult } | { ok: false; error: Error })[] {
    const results = this.db
      .transaction((all: StoreBatch[]) =>
        all.map((b) => {
          try {
            return { ok: true as const, result: this.write(b) }
          } catch (err) {
            // @NOTE some errors (disk full, I/O) roll back the whole transaction: then every batch must be retried
            if (!this.db.inTransaction) throw err
            return { ok: false as const, error: err instanceof Error ? err : new Error(String(err)) }
          }
        }),
      )
      .immediate(batches)
    this.likeGraph.foldIfDue()
    return results
  }

  /** Folds the like graph's log into its keyed table now (see LikeGraphWriter.fold); outside a transaction. */
  foldLikeGraph(): number {
    return this.likeGraph.fold()
  }

  private apply(b: StoreBatch): WriteResult {
    const st = this.st
    const now = Date.now()
    const r: WriteResult = { posts: 0, deleted: 0, likes: 0, reposts: 0, follows: 0, mixes: 0, accounts: 0, skipped: 0, scores: 0 }
    const changed = this.changed
    changed.clear()
    // a batch that failed half-way left its like-graph rows unwritten: they went with it
    this.likeGraph.discard()
    /** posts whose stored version is one of this batch's: only theirs get the batch's scores */
    const current = new Set<string>()
    for (const e of b.events) {
      switch (e.t) {
        case 'post': {
          const got = this.writePost(e, now)
          if (got === 'skipped') current.delete(e.uri)
          else current.add(e.uri)
          if (got === 'stored') r.posts++
          else r.skipped++
          break
        }
        case 'like':
        case 'repost': {
          this.graph.like(e, now)
          if (st.isTombstoned.get(e.uri)) {
            r.skipped++
            break
          }
          const stored = !!st.postExists.get(e.subject)
          // @NOTE a like of a post not stored yet waits for it (see PENDING_ENGAGEMENT_MS), as does a like of a post
          // withheld with its account; the post counts it when it comes
          if (!stored && !mayAwaitPost(e.subject, b.eventTime) && !st.isWithheld.get(e.subject)) {
            r.skipped++
            break
          }
          const key = engagementKey(e.uri)
          if (st.insertEngagement.run(key, e.t, e.subject).changes) {
            this.likeGraph.link(e.author, e.subject, e.t)
            if (!stored) st.await.run(e.subject, key, e.t)
            else if ((e.t === 'like' ? st.bumpLike : st.bumpRepost).run(1, e.subject).changes) changed.counted.add(e.subject)
            if (e.t === 'like') r.likes++
            else r.reposts++
          }
          break
        }
        case 'follow':
          // @NOTE both directions: who subscribers follow, and who follows them (for "mutual")
          // @NOTE the subscriber lookups first: most follows involve no subscriber, and they are cheaper than the tombstone's
          if ((st.isSubscriber.get(e.author) || st.isSubscriber.get(e.subject)) && !st.isTombstoned.get(e.uri)) {
            st.insertFollow.run(e.uri, e.author, e.subject)
            r.follows++
          } else r.skipped++
          break
        case 'mix':
          this.graph.seen(e.author, now)
          if (this.writeMix(e, now)) r.mixes++
          else r.skipped++
          break
        case 'delete':
          st.tombstone.run(e.uri, now)
          this.graph.deleted(e, now)
          if (e.collection === COLLECTIONS.post) {
            st.unwithhold.run(e.uri)
            st.dropScores.run(e.uri)
            const id = st.postId.get(e.uri) as number | undefined
            if (id !== undefined && st.deletePostId.run(id).changes) {
              changed.removed(id, e.uri)
              r.deleted++
            }
          } else if (e.collection === COLLECTIONS.follow) {
            st.deleteFollow.run(e.uri)
          } else if (e.collection === COLLECTIONS.mix) {
            const old = st.mixRecordFeed.get(e.uri) as { author: string; feed: string } | undefined
            if (old) {
              st.deleteMixRecord.run(e.uri)
              this.settleRecordMix(old.author, old.feed, now)
            }
          } else {
            const key = engagementKey(e.uri)
            const g = st.getEngagement.get(key) as { kind: string; subject: string } | undefined
            if (g) {
              st.deleteEngagement.run(key)
              this.likeGraph.unlink(parseAtUri(e.uri)?.did ?? '', g.subject, g.kind)
              // counted down where it was counted: still waiting for its post, in the post, or in the counts a purged post left
              if (!st.unwait.run(g.subject, key, g.kind).changes) {
                if ((g.kind === 'like' ? st.bumpLike : st.bumpRepost).run(-1, g.subject).changes) changed.counted.add(g.subject)
                else st.uncarry.run(g.subject, g.kind)
              }
            }
          }
          break
        case 'block':
          if (!this.graph.block(e)) r.skipped++
          break
        case 'listblock':
          if (!this.graph.listblock(e)) r.skipped++
          break
        case 'listitem':
          if (!this.graph.listitem(e)) r.skipped++
          break
        case 'consent':
          if (!this.graph.consent(e, now)) r.skipped++
          break
        case 'reader':
          this.graph.reader(e, now)
          break
        case 'account':
          r.accounts++
          r.deleted += this.writeAccount(e, now)
          break
      }
    }
    const live = new Map<string, boolean>()
    const rows: [string, string, number | null][] = []
    for (const [uri, key, score] of scoreEntries(b)) {
      // @NOTE NULL stores a drop; "no opinion" (a failed agent run) is not stored, so the next refresh asks again
      if (score === null) continue
      let ok = live.get(uri)
      // @NOTE the version stored (shown or withheld) must be this batch's, and still there (not deleted later in the batch)
      if (ok === undefined) live.set(uri, (ok = current.has(uri) && !!(st.postExists.get(uri) || st.isWithheld.get(uri))))
      if (ok) rows.push([key, uri, score === 'drop' ? null : score])
    }
    // @NOTE one statement for the batch's scores (a JSON array of [key, uri, score]): one statement per score (7 a post)
    // cost the writer a quarter of its time
    if (rows.length) r.scores += st.upsertScores.run(JSON.stringify(rows)).changes
    this.likeGraph.flush()
    this.log.flush(changed)
    st.settled.run(b.id)
    st.bumpCounter.run('events_stored', b.events.length)
    st.bumpCounter.run('posts_stored', r.posts)
    st.bumpCounter.run('posts_deleted', r.deleted)
    st.bumpCounter.run('engagements_stored', r.likes + r.reposts)
    st.maxCounter.run('last_event_time', b.eventTime)
    return r
  }

  /** Keeps a mix record and re-derives the author's record mix for the feeds it touches. */
  private writeMix(e: MixEvent, now: number): boolean {
    const st = this.st
    if (st.isTombstoned.get(e.uri)) return false
    const old = st.mixRecordFeed.get(e.uri) as { author: string; feed: string } | undefined
    if (!st.upsertMixRecord.run(e.uri, e.author, e.feed, JSON.stringify(e.agents), e.createdAt, e.rev).changes) return false
    // an update may point the record at another feed: the old feed falls back to what remains
    if (old && old.feed !== e.feed) this.settleRecordMix(old.author, old.feed, now)
    this.settleRecordMix(e.author, e.feed, now)
    return true
  }

  /**
   * Makes the author's 'record' row in `mixes` for a feed match the newest
   * remaining record (or removes it). Depends only on the records present, so
   * any order of creates, updates, deletes and replays ends in the same row.
   */
  private settleRecordMix(author: string, feed: string, now: number): void {
    const st = this.st
    const newest = st.newestMixRecord.get(author, feed) as { agents: string } | undefined
    if (!newest) {
      st.dropRecordMix.run(author, feed)
      return
    }
    st.putRecordMix.run(author, feed, newest.agents, recordMixFingerprint(JSON.parse(newest.agents)), now)
  }

  /** Whether the author's posts are withheld (the newest status stored says the account is not active). */
  private withheld(did: string): boolean {
    const a = this.st.accountRow.get(did) as { status: string } | undefined
    return a !== undefined && INACTIVE.has(a.status)
  }

  /**
   * Applies an account's status when it is newer than the one stored: an
   * account that stops being active has its posts moved to `withheld_posts`
   * (their counts wait in `waiting_engagements`), one that is active again
   * gets them back. Returns the posts removed from `posts`.
   */
  private writeAccount(e: AccountEvent, now: number): number {
    const st = this.st
    const hide = !e.active && INACTIVE.has(e.status ?? '')
    // @NOTE other statuses (e.g. throttled, desynchronized) leave the account as it is
    if (!e.active && !hide) return 0
    const rev = e.rev ?? ''
    const old = st.accountRow.get(e.did) as { status: string; rev: string } | undefined
    if (old && !replaces(rev, old.rev)) return 0
    st.setAccount.run(e.did, hide ? e.status : 'active', rev)
    const hidden = old !== undefined && INACTIVE.has(old.status)
    if (hide && !hidden) {
      // @NOTE the scores stay: they belong to the versions withheld, which come back as they are
      st.withholdAuthor.run(e.did)
      st.carryPurged.run({ did: e.did })
      this.log.deletingAuthor(e.did)
      return st.purgePosts.run(e.did).changes
    }
    if (!hide && hidden) {
      for (const p of st.withheldOf.all(e.did) as StoredPost[]) this.insertPost(p, now, null)
      st.unwithholdAuthor.run(e.did)
    }
    return 0
  }

  /** Stores a post's version: 'stored' (new or newer), 'same' (this version is already stored), 'withheld' (its account is not active) or 'skipped' (deleted, or older than the one stored). */
  private writePost(e: PostEvent, now: number): 'stored' | 'same' | 'withheld' | 'skipped' {
    const st = this.st
    if (st.isTombstoned.get(e.uri)) return 'skipped'
    const rev = e.rev ?? ''
    const row: StoredPost = {
      uri: e.uri,
      cid: e.cid,
      author: e.author,
      createdAt: e.createdAt,
      text: e.text,
      langs: JSON.stringify(e.langs),
      replyRoot: e.replyRoot,
      replyParent: e.replyParent,
      embed: e.embed,
      quote: e.quote,
      tags: JSON.stringify(e.tags),
      labels: JSON.stringify(e.labels),
      rev,
    }
    if (this.withheld(e.author)) {
      const had = st.withheldRev.get(e.uri) as string | undefined
      if (had !== undefined && !replaces(rev, had)) return had === rev ? 'withheld' : 'skipped'
      if (had !== undefined) st.dropScores.run(e.uri)
      st.withhold.run(row)
      return 'withheld'
    }
    const old = st.postRow.get(e.uri) as { id: number; cid: string; rev: string; likes: number; reposts: number } | undefined
    if (old && !replaces(rev, old.rev)) return old.rev === rev ? 'same' : 'skipped'
    if (old && old.cid === e.cid) {
      // the same content again under a newer version: only the version moves (an older edit must not replace it)
      if (rev !== '') st.setPostRev.run(rev, old.id)
      return 'same'
    }
    this.insertPost(row, now, old ?? null)
    return 'stored'
  }

  /** Inserts a post's row (`old`: the version it replaces, whose id goes and whose counts it keeps). */
  private insertPost(p: StoredPost, now: number, old: { id: number; likes: number; reposts: number } | null): void {
    const st = this.st
    if (old) {
      // an edit: the post is stored again under a new id (readers cache posts by id), keeping its counts; scores were for the old text
      st.dropScores.run(p.uri)
      st.deletePostId.run(old.id)
      this.changed.touched(old.id)
    }
    // a new post counts the likes and reposts that arrived before it (or that waited while it was withheld)
    const counts = old ?? (st.waitingCounts.get(p.uri) as { likes: number; reposts: number })
    if (!old) st.dropWaiting.run(p.uri)
    const { lastInsertRowid } = st.insertPost.run({
      uri: p.uri,
      cid: p.cid,
      author: p.author,
      createdAt: p.createdAt,
      indexedAt: now,
      text: p.text,
      langs: p.langs,
      replyRoot: p.replyRoot,
      replyParent: p.replyParent,
      embed: p.embed,
      quote: p.quote,
      tags: p.tags,
      labels: p.labels,
      likes: counts.likes,
      reposts: counts.reposts,
      rev: p.rev,
    })
    this.changed.touched(Number(lastInsertRowid))
  }
}

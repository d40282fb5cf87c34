import fs from 'node:fs'
import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { Sqlite } from './db.ts'
import { LikeGraphWriter } from './like-graph.ts'
import { PostChanges, PostLog } from './post-log.ts'
import { INTERACTION_HORIZON_MS } from './interactions.ts'
import { mayAwaitPost } from './writer.ts'
import { eventRev } from '../util/at-ids.ts'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** What retention keeps, as ages in ms (rows older than these go). */
export interface RetentionPolicy {
  /** posts (by created_at), with their scores, feed items and engagements: the longest feed window plus a margin */
  postsMs: number
  /** tombstones (by deletion time); a create older than this that arrives after its delete is stored and pruned again */
  tombstonesMs: number
  /** malformed input kept for inspection */
  rejectedMs: number
  /** readers' feedback (older feedback no longer counts) */
  interactionsMs: number
  /** a reader's personal overlay of a shared list: like any superseded snapshot (readers paging it keep it this long) */
  overlaysMs: number
  /** any ranked list nobody asked for in this long, even the newest of its mix (the next reader rebuilds it) */
  idleListsMs: number
  /** rows of the change logs (post_changes, post_deletions): readers further behind than this read everything again */
  changeLogMs: number
}

export interface RetentionOptions {
  /** rows per transaction at most (fewer when transactions take longer than txTargetMs): the writer is never blocked for long */
  batchSize?: number
  /** most work (ms of transactions) one run does; the rest waits for the next run */
  budgetMs?: number
  /** rows the orphan sweeps look at per run, per table */
  sweepRows?: number
  /** tombstones looked at per run (they have no time index: swept in key order) */
  tombstoneRows?: number
  /** checkpoint with TRUNCATE when the WAL file is larger than this */
  walTruncateBytes?: number
  /** pause between transactions so queued store jobs get their turn (at least as long as the transaction took) */
  pauseMs?: number
  /**
   * how long one transaction should hold the event loop (ms): rows per transaction are sized to it, step by step
   * (retention runs in the process that serves, by default)
   */
  txTargetMs?: number
}

export interface RetentionResult {
  posts: number
  scores: number
  /** rows trimmed from the change logs (post_changes, post_deletions) */
  logRows: number
  /** likes and reposts that waited for a post that never came, and counts purged posts left (rows of waiting_engagements) */
  engagements: number
  tombstones: number
  rejected: number
  interactions: number
  snapshots: number
  /** posts withheld with their (inactive) accounts, expired */
  withheld: number
  /** statuses of active accounts older than any late batch */
  accounts: number
  /** likes and reposts of posts no longer stored (expired, deleted, purged) */
  orphanEngagements: number
  orphanScores: number
  /** true when the budget ran out before everything due was pruned */
  partial: boolean
  ms: number
  /** transactions of the pass, and the longest one (ms): how long the pass held the event loop at a time */
  transactions: number
  maxTxMs: number
  wal: { bytesBefore: number; truncated: boolean; busy: boolean } | null
}

/** Margin on top of the longest window: late and slightly future-dated posts, clock skew, readers paging old lists. */
export const DEFAULT_MARGIN_MS = 6 * HOUR

/** How long the change logs keep a row: a reader idle for longer reads everything again once. */
export const CHANGE_LOG_MS = 15 * 60_000

/** The retention policy for a set of feeds. */
export function retentionPolicy(feeds: Pick<Feed, 'windowHours'>[], opts: { marginMs?: number; snapshotTtlMs: number }): RetentionPolicy {
  const windowMs = Math.max(1, ...feeds.map((f) => f.windowHours)) * HOUR
  const postsMs = windowMs + (opts.marginMs ?? DEFAULT_MARGIN_MS)
  return {
    postsMs,
    tombstonesMs: Math.max(postsMs, DAY),
    rejectedMs: 7 * DAY,
    interactionsMs: INTERACTION_HORIZON_MS,
    overlaysMs: opts.snapshotTtlMs,
    idleListsMs: Math.max(DAY, 2 * opts.snapshotTtlMs),
    changeLogMs: CHANGE_LOG_MS,
  }
}

const emptyResult = (): RetentionResult => ({
  posts: 0,
  scores: 0,
  logRows: 0,
  engagements: 0,
  tombstones: 0,
  rejected: 0,
  interactions: 0,
  snapshots: 0,
  withheld: 0,
  accounts: 0,
  orphanEngagements: 0,
  orphanScores: 0,
  partial: false,
  ms: 0,
  transactions: 0,
  maxTxMs: 0,
  wal: null,
})

/** Counter names (in `counters`) retention adds to: `retention_<key>`. */
export const RETENTION_COUNTERS = [
  'posts',
  'scores',
  'logRows',
  'engagements',
  'tombstones',
  'rejected',
  'interactions',
  'snapshots',
  'withheld',
  'accounts',
  'orphanEngagements',
  'orphanScores',
] as const

/** The smallest engagement key (where the engagement sweep starts over). */
const MIN_KEY = -(2n ** 63n)

/** The fewest rows a transaction is sized down to. */
const MIN_TX_ROWS = 10

/** How many more engagements than scores or tombstones a pass sweeps: expired posts' likes are removed only by the sweep. */
const ENGAGEMENT_SWEEP_FACTOR = 5

/**
 * Keeps the SQLite file bounded: deletes what no feed can rank any more, in
 * small transactions on the writer's own connection, with pauses between
 * them so store jobs keep flowing. Every step walks an index (or the primary
 * key) from its oldest end, so a run costs what it deletes, not the table
 * size. Afterwards the WAL is checkpointed (TRUNCATE when it grew large).
 */
export class Retention {
  private readonly db: Sqlite
  private readonly log: Logger
  private readonly file: string | null
  readonly policy: RetentionPolicy
  private readonly opts: Required<RetentionOptions>
  private readonly st
  private readonly likeGraph: LikeGraphWriter
  private readonly postLog: PostLog
  /** where the orphan sweeps continue (primary keys), wrapping around at the end */
  private sweep = { tombstones: '', engagements: MIN_KEY, scores: ['', ''] as [string, string] } // engagements: key; scores: [post uri, instance]
  /** the change logs' newest rows as seen by earlier passes: rows at or below a mark older than changeLogMs go */
  private marks: { at: number; changes: number; deletions: number }[] = []
  private running: Promise<RetentionResult> | null = null
  private stopping = false
  /** rows per transaction, per step, as the last transactions of that step sized them (see txTargetMs) */
  private readonly rows = new Map<string, number>()

  constructor(db: Sqlite, log: Logger, policy: RetentionPolicy, opts: RetentionOptions = {}) {
    this.db = db
    this.log = log
    this.policy = policy
    this.file = db.memory ? null : db.name
    this.opts = { batchSize: 500, budgetMs: 3000, sweepRows: 20_000, tombstoneRows: 200_000, walTruncateBytes: 64 << 20, pauseMs: 2, txTargetMs: 2, ...opts }
    this.postLog = new PostLog(db)
    this.likeGraph = new LikeGraphWriter(db)
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      oldPosts: p('SELECT id, uri FROM posts WHERE created_at < ? ORDER BY created_at LIMIT ?').raw(),
      scoresOf: p('DELETE FROM agent_scores WHERE post_uri = ?'),
      deletePost: p('DELETE FROM posts WHERE id = ?'),
      // @NOTE an active account's row only orders later events: one older than any late batch can be forgotten
      oldActive: p(`DELETE FROM account_status WHERE did IN (SELECT did FROM account_status WHERE rev < ? AND status = 'active' ORDER BY rev LIMIT ?)`),
      oldWithheld: p('DELETE FROM withheld_posts WHERE uri IN (SELECT uri FROM withheld_posts WHERE created_at < ? ORDER BY created_at LIMIT ?)'),
      // tombstones have no index on `at` (and may have no rowid): swept in primary-key order, a window at a time
      tombstoneWindow: p('SELECT uri, at FROM tombstones WHERE uri > ? ORDER BY uri LIMIT ?'),
      deleteTombstone: p('DELETE FROM tombstones WHERE uri = ? AND at < ?'),
      oldPending: p('DELETE FROM pending_batches WHERE id IN (SELECT id FROM pending_batches WHERE at < ? LIMIT ?)'),
      oldRejected: p('DELETE FROM rejected_events WHERE id IN (SELECT id FROM rejected_events WHERE at < ? ORDER BY at LIMIT ?)'),
      oldInteractions: p('DELETE FROM interactions WHERE id IN (SELECT id FROM interactions WHERE at < ? ORDER BY at LIMIT ?)'),
      oldSnapshots: p(`SELECT id FROM feed_snapshots WHERE (built_at < ? AND fingerprint LIKE '%~%') OR built_at < ? ORDER BY id LIMIT ?`).pluck(),
      deleteSnapshot: p('DELETE FROM feed_snapshots WHERE id = ?'),
      // @NOTE keys are 64-bit: read as BigInt
      // @NOTE a post withheld with its account keeps its likes for when it comes back
      engagementWindow: p(`SELECT e.key AS key, e.subject AS subject,
          (EXISTS (SELECT 1 FROM posts p WHERE p.uri = e.subject) OR EXISTS (SELECT 1 FROM withheld_posts w WHERE w.uri = e.subject)) AS live
        FROM engagements e WHERE e.key >= ? ORDER BY e.key LIMIT ?`).safeIntegers(),
      waitingWindow: p(`SELECT DISTINCT subject FROM waiting_engagements WHERE subject > ? ORDER BY subject LIMIT ?`).pluck(),
      dropWaiting: p(`DELETE FROM waiting_engagements WHERE subject = ? AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.uri = waiting_engagements.subject)
        AND NOT EXISTS (SELECT 1 FROM withheld_posts w WHERE w.uri = waiting_engagements.subject)`),
      lastEventTime: p(`SELECT value FROM counters WHERE name = 'last_event_time'`).pluck(),
      deleteEngagement: p(`DELETE FROM engagements WHERE key = ? AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.uri = engagements.subject)
        AND NOT EXISTS (SELECT 1 FROM withheld_posts w WHERE w.uri = engagements.subject)`),
      // @NOTE in primary-key order (post first), so a window is a range read, not a sort of the whole table
      scoreWindow:
        p(`SELECT s.instance AS instance, s.post_uri AS uri, (EXISTS (SELECT 1 FROM posts p WHERE p.uri = s.post_uri) OR EXISTS (SELECT 1 FROM withheld_posts w WHERE w.uri = s.post_uri)) AS live
        FROM agent_scores s WHERE (s.post_uri, s.instance) > (?, ?) ORDER BY s.post_uri, s.instance LIMIT ?`),
      deleteScore: p(`DELETE FROM agent_scores WHERE instance = ? AND post_uri = ? AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.uri = agent_scores.post_uri)
        AND NOT EXISTS (SELECT 1 FROM withheld_posts w WHERE w.uri = agent_scores.post_uri)`),
      lastChange: p('SELECT max(seq) FROM post_changes').pluck(),
      lastDeletion: p('SELECT max(seq) FROM post_deletions').pluck(),
      // @NOTE the newest row always stays: sequence numbers (rowids) must never be handed out again
      trimChanges: p(
        'DELETE FROM post_changes WHERE seq IN (SELECT seq FROM post_changes WHERE seq <= ? AND seq < (SELECT max(seq) FROM post_changes) ORDER BY seq LIMIT ?)',
      ),
      trimDeletions: p(
        'DELETE FROM post_deletions WHERE seq IN (SELECT seq FROM post_deletions WHERE seq <= ? AND seq < (SELECT max(seq) FROM post_deletions) ORDER BY seq LIMIT ?)',
      ),
      bump: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
      setMax: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)'),
    }
  }

  /** One pass; concurrent calls share the pass in progress. */
  run(now = Date.now()): Promise<RetentionResult> {
    this.running ??= this.pass(now).finally(() => (this.running = null))
    return this.running
  }

  /** Ends a pass in progress after its current transaction (shutdown). */
  abort(): void {
    this.stopping = true
  }

  private async pass(now: number): Promise<RetentionResult> {
    const t0 = performance.now()
    const r = emptyResult()
    const pol = this.policy
    const { batchSize } = this.opts
    let spent = 0
    /**
     * Runs one transaction of a step over up to `max` rows (fewer when that step's transactions took longer than
     * txTargetMs), timed against the budget, then pauses at least as long: the rows it was given, and what it returned.
     */
    const tx = async (step: string, fn: (rows: number) => number, max: number): Promise<{ n: number; rows: number }> => {
      // @NOTE a step not timed yet starts at a quarter of its batch (2,000 rows of a sweep took 5–10 ms here)
      const rows = Math.min(max, this.rows.get(step) ?? Math.max(MIN_TX_ROWS, Math.floor(max / 4)))
      const t = performance.now()
      const n = this.db.transaction(() => fn(rows))()
      const ms = performance.now() - t
      spent += ms
      r.transactions++
      r.maxTxMs = Math.max(r.maxTxMs, ms)
      this.rows.set(step, nextRows(rows, ms, this.opts.txTargetMs, max))
      // @NOTE the serving thread may share this event loop: retention takes at most about half of it
      const pause = Math.max(this.opts.pauseMs, ms)
      if (pause > 0) await new Promise((res) => setTimeout(res, pause))
      return { n, rows }
    }
    const budgetLeft = () => spent < this.opts.budgetMs && !this.stopping
    /** Repeats a step until it removes fewer rows than it was given. */
    const drain = async (step: string, fn: (rows: number) => number, max = batchSize) => {
      while (budgetLeft()) {
        const { n, rows } = await tx(step, fn, max)
        if (n < rows) return
      }
      r.partial = true
    }

    // 0. the change logs' old end (a mark per pass says how far they reached at the time); first, so a long catch-up
    // of the other steps cannot starve it
    this.marks.push({ at: now, changes: Number(this.st.lastChange.get() ?? 0), deletions: Number(this.st.lastDeletion.get() ?? 0) })
    let cut: (typeof this.marks)[number] | undefined
    while (this.marks.length > 1 && this.marks[0].at <= now - pol.changeLogMs) cut = this.marks.shift()
    if (cut) {
      await drain('changes', (rows) => this.count('logRows', r, this.st.trimChanges.run(cut.changes, rows).changes), batchSize * 20)
      await drain('deletions', (rows) => this.count('logRows', r, this.st.trimDeletions.run(cut.deletions, rows).changes), batchSize * 20)
    }

    // 1. posts past every window, with what hangs off them
    await drain('posts', (n) => {
      const rows = this.st.oldPosts.all(now - pol.postsMs, n) as [number, string][]
      const changes = new PostChanges()
      for (const [id, uri] of rows) {
        r.scores += this.st.scoresOf.run(uri).changes
        // @NOTE its likes and reposts (keyed by their own URIs, with no index on the post) go with the orphan sweep, step 5
        // @NOTE an expired post is not a deletion (it still exists on the network): ranking lists learn it is gone,
        // pages already served may keep it until they are read again (a page read from a snapshot checks every post)
        if (this.st.deletePost.run(id).changes) {
          changes.touched(id)
          r.posts++
        }
      }
      this.postLog.flush(changes)
      return rows.length
    })
    // posts withheld with their accounts, past every window too (they would expire as soon as they came back); their
    // scores and likes go with the orphan sweeps
    await drain('withheld', (rows) => this.count('withheld', r, this.st.oldWithheld.run(now - pol.postsMs, rows).changes))

    // 2. tombstones: swept in key order from where the last pass stopped (back to the start after the end)
    const tombCutoff = now - pol.tombstonesMs
    for (let seen = 0; seen < this.opts.tombstoneRows && budgetLeft(); ) {
      const { n, rows: asked } = await tx(
        'tombstones',
        (size) => {
          const rows = this.st.tombstoneWindow.all(this.sweep.tombstones, size) as { uri: string; at: number }[]
          for (const row of rows) if (row.at < tombCutoff) r.tombstones += this.st.deleteTombstone.run(row.uri, tombCutoff).changes
          this.sweep.tombstones = rows.length === size ? rows[rows.length - 1].uri : ''
          return rows.length
        },
        batchSize * 4,
      )
      seen += n
      if (n < asked) break
    }

    // statuses of accounts that are active, as old as tombstones (nothing arrives that late)
    await drain('accounts', (rows) => this.count('accounts', r, this.st.oldActive.run(eventRev(tombCutoff * 1000), rows).changes))

    // 3. rejected input, old feedback, and batches never stored (failed for good) an ingest would otherwise rewind to
    await drain('pending', (rows) => this.st.oldPending.run(now - DAY, rows).changes)
    await drain('rejected', (rows) => this.count('rejected', r, this.st.oldRejected.run(now - pol.rejectedMs, rows).changes))
    await drain('interactions', (rows) => this.count('interactions', r, this.st.oldInteractions.run(now - pol.interactionsMs, rows).changes))

    // 4. ranked lists: superseded overlays, and lists idle for long (snapshots of up to cacheSize items: fewer per transaction)
    await drain(
      'snapshots',
      (n) => {
        const ids = this.st.oldSnapshots.all(now - pol.overlaysMs, now - pol.idleListsMs, n) as number[]
        for (const id of ids) {
          r.snapshots += this.st.deleteSnapshot.run(id).changes
        }
        return ids.length
      },
      Math.max(1, Math.floor(batchSize / 25)),
    )

    // 5. orphans left by post deletes and account purges (engagements) or by races with them (scores), swept a window at a time;
    // a like of a post not stored yet may still be waiting for it (judged against the newest stored event, as the writer does)
    const lastEvent = (this.st.lastEventTime.get() as number | undefined) ?? now
    // (engagements of expired posts too: ENGAGEMENT_SWEEP_FACTOR times the rows of the other sweeps, each a lookup)
    for (let seen = 0; seen < this.opts.sweepRows * ENGAGEMENT_SWEEP_FACTOR && budgetLeft(); ) {
      const { n, rows: asked } = await tx(
        'engagements',
        (size) => {
          const rows = this.st.engagementWindow.all(this.sweep.engagements, size) as { key: bigint; subject: string; live: bigint }[]
          for (const row of rows) {
            if (row.live || mayAwaitPost(row.subject, lastEvent) || !this.st.deleteEngagement.run(row.key).changes) continue
            r.orphanEngagements++
            // the post is gone: so is who liked it
            this.likeGraph.dropSubject(row.subject)
          }
          this.sweep.engagements = rows.length === size ? rows[rows.length - 1].key + 1n : MIN_KEY
          return rows.length
        },
        batchSize * 4,
      )
      seen += n
      if (n < asked) break
    }
    // likes waiting for a post that never came, and counts a purged post left (rows by post: few)
    for (let after = '', more = true; more && budgetLeft(); ) {
      await tx(
        'waiting',
        (size) => {
          const subjects = this.st.waitingWindow.all(after, size) as string[]
          for (const subject of subjects) if (!mayAwaitPost(subject, lastEvent)) r.engagements += this.st.dropWaiting.run(subject).changes
          more = subjects.length === size
          if (more) after = subjects[subjects.length - 1]
          return subjects.length
        },
        batchSize,
      )
    }
    for (let seen = 0; seen < this.opts.sweepRows && budgetLeft(); ) {
      const { n, rows: asked } = await tx(
        'scores',
        (size) => {
          const rows = this.st.scoreWindow.all(this.sweep.scores[0], this.sweep.scores[1], size) as { instance: string; uri: string; live: number }[]
          for (const row of rows) if (!row.live) r.orphanScores += this.st.deleteScore.run(row.instance, row.uri).changes
          this.sweep.scores = rows.length === size ? [rows[rows.length - 1].uri, rows[rows.length - 1].instance] : ['', '']
          return rows.length
        },
        batchSize * 4,
      )
      seen += n
      if (n < asked) break
    }

    // 6. totals for status and metrics
    this.db.transaction(() => {
      for (const k of RETENTION_COUNTERS) if (r[k]) this.st.bump.run(`retention_${k}`, r[k])
      this.st.bump.run('retention_runs', 1)
      this.st.setMax.run('retention_last_run', now)
    })()

    // 7. WAL: a PASSIVE checkpoint never waits; TRUNCATE (which waits for readers) only when the file has grown large
    r.wal = this.checkpoint()
    r.ms = Math.round(performance.now() - t0)
    r.maxTxMs = Math.round(r.maxTxMs * 10) / 10
    const total = RETENTION_COUNTERS.reduce((s, k) => s + r[k], 0)
    if (total || r.partial || r.wal?.truncated) this.log.info({ ...r }, 'retention pass')
    return r
  }

  private count(key: 'rejected' | 'interactions' | 'logRows' | 'withheld' | 'accounts', r: RetentionResult, n: number): number {
    r[key] += n
    return n
  }

  private checkpoint(): RetentionResult['wal'] {
    if (!this.file) return null
    const bytesBefore = fileSize(`${this.file}-wal`)
    const mode = bytesBefore > this.opts.walTruncateBytes ? 'TRUNCATE' : 'PASSIVE'
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number
    try {
      // @NOTE TRUNCATE waits for readers in other processes through the busy handler: a short wait, then try again next pass
      if (mode === 'TRUNCATE') this.db.pragma('busy_timeout = 250')
      const [res] = this.db.pragma(`wal_checkpoint(${mode})`) as { busy: number; log: number; checkpointed: number }[]
      return { bytesBefore, truncated: mode === 'TRUNCATE' && res?.busy === 0, busy: res?.busy === 1 }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, mode }, 'WAL checkpoint failed')
      return { bytesBefore, truncated: false, busy: true }
    } finally {
      if (mode === 'TRUNCATE') this.db.pragma(`busy_timeout = ${timeout}`)
    }
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size
  } catch {
    return 0
  }
}

/**
 * Runs retention every `intervalMs` (first pass after `firstMs`) next to the
 * store writer. Also caps the WAL file: after a checkpoint it is truncated
 * to `journal_size_limit`.
 */
export function startRetention(
  db: Sqlite,
  log: Logger,
  policy: RetentionPolicy,
  opts: RetentionOptions & { intervalMs?: number; firstMs?: number } = {},
): { retention: Retention; stop(): Promise<void> } {
  const retention = new Retention(db, log, policy, opts)
  try {
    db.pragma(`journal_size_limit = ${opts.walTruncateBytes ?? 64 << 20}`)
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'journal_size_limit not set')
  }
  let current: Promise<unknown> = Promise.resolve()
  let stopped = false
  const tick = () => {
    if (stopped) return
    current = retention.run().catch((err) => log.warn({ err: (err as Error).message }, 'retention pass failed'))
  }
  const first = setTimeout(tick, opts.firstMs ?? 60_000)
  const timer = setInterval(tick, opts.intervalMs ?? 5 * 60_000)
  first.unref()
  timer.unref()
  return {
    retention,
    async stop() {
      stopped = true
      retention.abort()
      clearTimeout(first)
      clearInterval(timer)
      await current
    },
  }
}

/**
 * The rows the next transaction of a step is given: fewer, in proportion, when this one (of `rows` rows) took longer
 * than the target; twice as many (up to `max`) when it took under half of it.
 */
export function nextRows(rows: number, ms: number, targetMs: number, max: number): number {
  if (ms > targetMs * 1.5) return Math.max(Math.min(MIN_TX_ROWS, max), Math.floor((rows * targetMs) / ms))
  if (ms < targetMs / 2) return Math.min(max, rows * 2)
  return rows
}

import type { Logger } from '../logger.ts'
import type { Sqlite } from './db.ts'
import { GRAPH_VERSION } from './reader-graph-writer.ts'
import { PENDING_ENGAGEMENT_MS } from './writer.ts'

export interface ReaderRetentionOptions {
  /** a reader not seen for this long is forgotten */
  readerRetentionMs: number
  /** a reader's own likes kept at most (the newest) */
  maxLikes: number
  /** readers forgotten, or trimmed, per pass at most */
  batch?: number
}

export interface ReaderRetentionResult {
  readers: number
  likes: number
  consent: number
}

/**
 * How long a consent row with every flag false is kept: long enough that an older "true" arriving late (batches are
 * stored out of order for minutes at most; see PENDING_ENGAGEMENT_MS) still loses to it. Every profile update on the
 * network leaves such a row, so they do not stay longer.
 */
export const CONSENT_FALSE_KEEP_MS = PENDING_ENGAGEMENT_MS

/**
 * Forgets readers not seen for a long time (their row, likes, blocks, block
 * lists, and follows unless they keep a saved mix), trims each reader's
 * likes to the newest `maxLikes`, and drops consent rows that say nothing
 * any more. Runs next to the store writer; each pass is bounded.
 */
export class ReaderRetention {
  private readonly db: Sqlite
  private readonly o: Required<ReaderRetentionOptions>
  private readonly st
  /** where the likes trim continues (reader DIDs, wrapping around) */
  private likesFrom = ''

  constructor(db: Sqlite, opts: ReaderRetentionOptions) {
    this.db = db
    this.o = { batch: 200, ...opts }
    const p = (sql: string) => db.prepare(sql)
    const notReader = (col: string) =>
      `NOT EXISTS (SELECT 1 FROM readers r WHERE r.did = ${col}) AND NOT EXISTS (SELECT 1 FROM mixes m WHERE m.subscriber = ${col})`
    this.st = {
      stale: p('SELECT did FROM readers WHERE last_seen < ? ORDER BY last_seen LIMIT ?').pluck(),
      dropReader: p('DELETE FROM readers WHERE did = ?'),
      dropLikes: p('DELETE FROM reader_likes WHERE author = ?'),
      // @NOTE after the reader's row is gone: a block stays while its other side is a reader
      dropBlocks: p(`DELETE FROM blocks WHERE (author = @did AND ${notReader('blocks.subject')}) OR (subject = @did AND ${notReader('blocks.author')})`),
      listsOf: p('SELECT list FROM list_blocks WHERE author = ?').pluck(),
      dropListBlocks: p('DELETE FROM list_blocks WHERE author = ?'),
      dropOrphanItems: p('DELETE FROM list_items WHERE list = @list AND NOT EXISTS (SELECT 1 FROM list_blocks WHERE list = @list)'),
      hasMix: p('SELECT 1 FROM mixes WHERE subscriber = ? LIMIT 1').pluck(),
      dropFollows: p(`DELETE FROM follows WHERE (author = @did AND ${notReader('follows.subject')}) OR (subject = @did AND ${notReader('follows.author')})`),
      readersFrom: p('SELECT did FROM readers WHERE did > ? ORDER BY did LIMIT ?').pluck(),
      trimLikes: p(
        `DELETE FROM reader_likes WHERE author = @did AND at < (SELECT at FROM reader_likes WHERE author = @did ORDER BY at DESC LIMIT 1 OFFSET @keep)`,
      ),
      dropQuietConsent: p('DELETE FROM author_consent WHERE updated_at < ? AND hide = 0 AND no_unauth = 0'),
      bump: p('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1'),
    }
  }

  /** One bounded pass. */
  run(now = Date.now()): ReaderRetentionResult {
    const st = this.st
    const out: ReaderRetentionResult = { readers: 0, likes: 0, consent: 0 }
    const stale = st.stale.all(now - this.o.readerRetentionMs, this.o.batch) as string[]
    if (stale.length) {
      this.db
        .transaction(() => {
          for (const did of stale) {
            st.dropReader.run(did)
            st.dropLikes.run(did)
            st.dropBlocks.run({ did })
            const lists = st.listsOf.all(did) as string[]
            st.dropListBlocks.run(did)
            for (const list of lists) st.dropOrphanItems.run({ list })
            // @NOTE a subscriber with a saved mix keeps the follows personal agents read, as before readers were kept
            if (!st.hasMix.get(did)) st.dropFollows.run({ did })
            out.readers++
          }
          st.bump.run(GRAPH_VERSION)
        })
        .immediate()
    }
    const batch = st.readersFrom.all(this.likesFrom, this.o.batch) as string[]
    this.likesFrom = batch.length === this.o.batch ? batch[batch.length - 1] : ''
    if (batch.length) {
      this.db
        .transaction(() => {
          for (const did of batch) out.likes += st.trimLikes.run({ did, keep: this.o.maxLikes - 1 }).changes
        })
        .immediate()
    }
    out.consent = st.dropQuietConsent.run(now - CONSENT_FALSE_KEEP_MS).changes
    return out
  }
}

/** Runs ReaderRetention every `intervalMs` next to the store writer. */
export function startReaderRetention(db: Sqlite, log: Logger, opts: ReaderRetentionOptions & { intervalMs?: number }): { stop(): void } {
  const retention = new ReaderRetention(db, opts)
  const timer = setInterval(
    () => {
      try {
        const r = retention.run()
        if (r.readers || r.likes || r.consent) log.info(r, 'reader retention pass')
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'reader retention pass failed')
      }
    },
    opts.intervalMs ?? 10 * 60_000,
  )
  timer.unref()
  return { stop: () => clearInterval(timer) }
}

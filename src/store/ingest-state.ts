import type { Sqlite } from './db.ts'

/**
 * What an ingest keeps in SQLite for one source: its saved cursor
 * (`cursors`), the batches it queued that the store writer has not stored
 * yet (`pending_batches`, with where to read each again from), its Redis
 * epoch (`counters`), and the inputs it could not decode (`rejected_events`).
 */
export class IngestState {
  readonly source: string
  private readonly db: Sqlite
  private readonly epochName: string
  private readonly st

  constructor(db: Sqlite, source: string) {
    this.db = db
    this.source = source
    this.epochName = `redis_epoch:${source}`
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      saveCursor: p(
        `INSERT INTO cursors (source, cursor, event_time, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor, event_time = excluded.event_time, updated_at = excluded.updated_at`,
      ),
      loadCursor: p('SELECT cursor FROM cursors WHERE source = ?').pluck(),
      addPending: p('INSERT INTO pending_batches (id, source, resume_from, at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO NOTHING'),
      pendingOf: p('SELECT resume_from FROM pending_batches WHERE source = ?').pluck(),
      anyPending: p('SELECT 1 FROM pending_batches WHERE source = ? LIMIT 1').pluck(),
      dropPendingFrom: p('DELETE FROM pending_batches WHERE source = ? AND CAST(resume_from AS REAL) >= ?'),
      epochOf: p('SELECT value FROM counters WHERE name = ?').pluck(),
      saveEpoch: p('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value'),
      saveReject: p('INSERT INTO rejected_events (source, reason, payload, at) VALUES (?, ?, ?, ?)'),
      trimRejects: p('DELETE FROM rejected_events WHERE id <= (SELECT max(id) FROM rejected_events) - ?'),
    }
  }

  /** The saved cursor, if any. */
  cursor(): number | undefined {
    const c = this.st.loadCursor.get(this.source) as string | undefined
    return c === undefined ? undefined : Number(c)
  }

  /** Saves the cursor a restart resumes after, with the event time it reached (null when unknown). */
  saveCursor(cursor: number, eventTime: number | null, at = Date.now()): void {
    this.st.saveCursor.run(this.source, String(cursor), eventTime, at)
  }

  /** Records a batch as queued and not stored yet, with the cursor to read it again from (kept as text, as the cursor is). */
  addPending(id: string, resumeFrom: string, at = Date.now()): void {
    this.st.addPending.run(id, this.source, resumeFrom, at)
  }

  /** Where each pending batch would be read again from. */
  pendingResumePoints(): number[] {
    return (this.st.pendingOf.all(this.source) as string[]).map(Number)
  }

  /** Whether any batch of this source is queued and not stored yet. */
  hasPending(): boolean {
    return this.st.anyPending.get(this.source) !== undefined
  }

  /** Forgets the pending batches read again from `from` on (they are recorded again as they are queued again). */
  dropPendingFrom(from: number): void {
    this.st.dropPendingFrom.run(this.source, from)
  }

  /** The Redis epoch last saved for this source, as text, or null when none was. */
  epoch(): string | null {
    const v = this.st.epochOf.get(this.epochName) as number | undefined
    return v === undefined ? null : String(v)
  }

  /**
   * In one transaction: saves a new Redis epoch and, when batches were lost
   * with the old one, sets the cursor back to `rewindTo` and forgets the
   * pending batches from there on (the ones read again are queued anew, under new ids).
   */
  newEpoch(epoch: string, rewindTo: number | null, at = Date.now()): void {
    this.db.transaction(() => {
      if (rewindTo !== null) {
        this.st.saveCursor.run(this.source, String(rewindTo), null, at)
        this.st.dropPendingFrom.run(this.source, rewindTo)
      }
      this.st.saveEpoch.run(this.epochName, Number(epoch))
    })()
  }

  /** Keeps an input that could not be decoded (the payload cut to 4 KiB). */
  reject(reason: string, payload: string, at = Date.now()): void {
    this.st.saveReject.run(this.source, reason, payload.slice(0, 4096), at)
  }

  /** Keeps only the newest `keep` rejected inputs (of every source). */
  trimRejects(keep: number): void {
    this.st.trimRejects.run(keep)
  }
}

/** Forgets where a source got to, so it is read from its start again (a replay file written anew). */
export function forgetCursor(db: Sqlite, source: string): void {
  db.prepare('DELETE FROM cursors WHERE source = ?').run(source)
}

import type { Sqlite } from './db.ts'
import { CONSENT_VERSION } from './reader-graph-writer.ts'

/** An author's consent flags as stored: [did, hide, noUnauthenticated, updatedAt]. */
export type ConsentRow = [did: string, hide: 0 | 1, noUnauth: 0 | 1, updatedAt: number]

/**
 * What takes posts out of pages already made, read in order for nodes that
 * keep no SQLite file: deletions (`post_deletions`, by row) and authors'
 * consent flags (`author_consent`, by the time a flag last changed).
 */
export class ChangeLogRepository {
  private readonly st

  constructor(db: Sqlite) {
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      span: p('SELECT min(seq), max(seq) FROM post_deletions').raw(),
      deletionsSince: p('SELECT seq, uri FROM post_deletions WHERE seq > ? ORDER BY seq LIMIT ?').raw(),
      consentVersion: p(`SELECT value FROM counters WHERE name = '${CONSENT_VERSION}'`).pluck(),
      consentSince: p('SELECT did, hide, no_unauth, updated_at FROM author_consent WHERE updated_at >= ? ORDER BY updated_at LIMIT ?').raw(),
      flagged: p('SELECT did, hide, no_unauth, updated_at FROM author_consent WHERE hide = 1 OR no_unauth = 1 LIMIT ?').raw(),
      newestConsent: p('SELECT max(updated_at) FROM author_consent').pluck(),
    }
  }

  /** The oldest and newest post_deletions rows still kept (0, 0 without any). */
  deletionSpan(): { first: number; last: number } {
    const [first, last] = this.st.span.get() as [number | null, number | null]
    return { first: first ?? 0, last: last ?? 0 }
  }

  /** Up to `limit` deletions logged after a row: [seq, uri], in order. */
  deletionsSince(seq: number, limit: number): [number, string][] {
    return this.st.deletionsSince.all(seq, limit) as [number, string][]
  }

  /** Moves whenever a consent flag changes (0 before any). */
  consentVersion(): number {
    return Number(this.st.consentVersion.get() ?? 0)
  }

  /** Up to `limit` consent rows whose flags changed at or after `at` (ms, the writer's clock), oldest change first. */
  consentSince(at: number, limit: number): ConsentRow[] {
    return this.st.consentSince.all(at, limit) as ConsentRow[]
  }

  /** Up to `limit` authors with a flag set (hiding from algorithmic feeds, or from logged-out readers). */
  consentFlagged(limit: number): ConsentRow[] {
    return this.st.flagged.all(limit) as ConsentRow[]
  }

  /** When a consent flag last changed (0 before any). */
  newestConsentAt(): number {
    return Number(this.st.newestConsent.get() ?? 0)
  }
}

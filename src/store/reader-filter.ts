import type { Sqlite } from './db.ts'
import { deletionsLoggedHere } from './post-log.ts'
import { CONSENT_VERSION, GRAPH_VERSION } from './reader-graph-writer.ts'

/** How often the filter looks for consent and block changes (a change reaches pages at most this much later). */
export const FILTER_RECHECK_MS = 500
/** Readers whose block sets are kept in memory at most (past this they are read again). */
const MAX_READERS = 10_000
/**
 * A reader's block set is read again at most this often: any reader's block (or a change to a subscribed block
 * list) moves the one version, and a reader subscribed to a large list should not read it on every request.
 */
const BLOCKS_MIN_AGE_MS = 2000
/** Consent rows are read again from this far before the newest seen (the writer's clock, commits in between). */
const CONSENT_MARGIN_MS = 10_000

/** The DID of an at-uri's repo (`at://<did>/…`). */
export function uriAuthor(uri: string): string {
  const end = uri.indexOf('/', 5)
  return end < 0 ? uri.slice(5) : uri.slice(5, end)
}

const shared = new WeakMap<Sqlite, ReaderFilter>()

/**
 * Which authors a reader must not be shown, as the store knows it: authors
 * who asked to be left out of algorithmic feeds (everyone), authors who
 * asked not to be shown to logged-out readers (anonymous readers), and for
 * a signed-in reader, everyone they block (directly or through a block list
 * they subscribe to) and everyone who blocks them. Kept in memory and
 * brought up to date at most every FILTER_RECHECK_MS: consent flags by the
 * rows changed since, block sets read again per reader after a change.
 */
export class ReaderFilter {
  private readonly db: Sqlite
  private readonly st
  private readonly recheckMs: number
  private readonly blocksMinAgeMs: number
  private readonly hidden = new Set<string>()
  private readonly noUnauth = new Set<string>()
  private readonly blocked = new Map<string, { set: Set<string>; version: number; at: number }>()
  private checkedAt = -Infinity
  private consentVersion = -1
  private graphVersion = -1
  private consentSince = 0
  private localDeletions = -1

  constructor(db: Sqlite, opts: { recheckMs?: number } = {}) {
    this.db = db
    this.recheckMs = opts.recheckMs ?? FILTER_RECHECK_MS
    this.blocksMinAgeMs = Math.min(BLOCKS_MIN_AGE_MS, 4 * this.recheckMs)
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      versions: p(`SELECT (SELECT value FROM counters WHERE name = '${CONSENT_VERSION}'), (SELECT value FROM counters WHERE name = '${GRAPH_VERSION}')`).raw(),
      consentSince: p('SELECT did, hide, no_unauth, updated_at FROM author_consent WHERE updated_at >= ?').raw(),
      blocked: p(`SELECT subject FROM blocks WHERE author = @did
        UNION SELECT author FROM blocks WHERE subject = @did
        UNION SELECT li.subject FROM list_blocks lb JOIN list_items li ON li.list = lb.list WHERE lb.author = @did`).pluck(),
    }
  }

  /** The filter every reader of a connection shares. */
  static of(db: Sqlite): ReaderFilter {
    let f = shared.get(db)
    if (!f) shared.set(db, (f = new ReaderFilter(db)))
    return f
  }

  /** Brings the flags and block sets up to date (at most once per recheck interval). */
  private sync(now: number): void {
    // @NOTE a declaration stored through this connection logs deletions: seen at once, like SnapshotPages.pageOf sees them
    const local = deletionsLoggedHere(this.db)
    if (now - this.checkedAt < this.recheckMs && local === this.localDeletions) return
    this.checkedAt = now
    this.localDeletions = local
    const [cv, gv] = this.st.versions.get() as [number | null, number | null]
    if ((cv ?? 0) !== this.consentVersion) {
      this.consentVersion = cv ?? 0
      for (const [did, hide, noUnauth, at] of this.st.consentSince.all(Math.max(0, this.consentSince - CONSENT_MARGIN_MS)) as [
        string,
        number,
        number,
        number,
      ][]) {
        if (hide) this.hidden.add(did)
        else this.hidden.delete(did)
        if (noUnauth) this.noUnauth.add(did)
        else this.noUnauth.delete(did)
        if (at > this.consentSince) this.consentSince = at
      }
    }
    this.graphVersion = gv ?? 0
  }

  /** Whether an author asked algorithmic feeds to leave their posts out. */
  isHidden(did: string, now = performance.now()): boolean {
    this.sync(now)
    return this.hidden.has(did)
  }

  /** Whether an author asked not to be shown to logged-out readers. */
  isNoUnauthenticated(did: string, now = performance.now()): boolean {
    this.sync(now)
    return this.noUnauth.has(did)
  }

  /** Everyone the reader blocks (directly or by a block list) or who blocks the reader. */
  blockedFor(reader: string, now = performance.now()): ReadonlySet<string> {
    this.sync(now)
    const have = this.blocked.get(reader)
    if (have && (have.version === this.graphVersion || now - have.at < this.blocksMinAgeMs)) return have.set
    if (!have && this.blocked.size >= MAX_READERS) this.blocked.clear()
    const set = new Set(this.st.blocked.all({ did: reader }) as string[])
    this.blocked.set(reader, { set, version: this.graphVersion, at: now })
    return set
  }

  /**
   * Authors that are never candidates for a list: those hiding from
   * algorithmic feeds, and for a personal list the reader's blocks both
   * ways. null when there is none.
   */
  excluder(reader: string | null, now = performance.now()): ((author: string) => boolean) | null {
    this.sync(now)
    const hidden = this.hidden
    const blocked = reader ? this.blockedFor(reader, now) : null
    if (blocked?.size) return (a) => hidden.has(a) || blocked.has(a)
    return hidden.size ? (a) => hidden.has(a) : null
  }

  /**
   * Whether a post (by URI) may be on this reader's page: what excluder()
   * leaves out, and for anonymous readers the authors who asked not to be
   * shown to them. null when every post may.
   */
  pageFilter(reader: string | null, now = performance.now()): ((postUri: string) => boolean) | null {
    this.sync(now)
    const hidden = this.hidden
    if (reader === null) {
      const anon = this.noUnauth
      if (!hidden.size && !anon.size) return null
      return (uri) => {
        const a = uriAuthor(uri)
        return !hidden.has(a) && !anon.has(a)
      }
    }
    const blocked = this.blockedFor(reader, now)
    if (!hidden.size && !blocked.size) return null
    return (uri) => {
      const a = uriAuthor(uri)
      return !hidden.has(a) && !blocked.has(a)
    }
  }
}

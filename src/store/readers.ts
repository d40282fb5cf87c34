import type { Sqlite } from './db.ts'

/** A reader's row as the backfill sees it. */
export interface ReaderState {
  /** when their graph was backfilled (null: not yet) */
  backfilledAt: number | null
  /** a backfill is not tried before this */
  nextTryAt: number
  /** a backfill is under way until this */
  claimedUntil: number
}

/**
 * The `readers` table: who was seen, and where each reader's backfill
 * stands. Serving processes write it directly (a row per reader, at most
 * once per reader per touch interval); the records of a backfill go through
 * the store writer (see ReaderBackfill).
 */
export class ReaderStore {
  private readonly st

  constructor(db: Sqlite) {
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      touch: p(`INSERT INTO readers (did, first_seen, last_seen) VALUES (@did, @now, @now)
        ON CONFLICT(did) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
        RETURNING backfilled_at AS backfilledAt, next_try_at AS nextTryAt, claimed_until AS claimedUntil`),
      state: p('SELECT backfilled_at AS backfilledAt, next_try_at AS nextTryAt, claimed_until AS claimedUntil FROM readers WHERE did = ?'),
      claim: p('UPDATE readers SET claimed_until = @until WHERE did = @did AND backfilled_at IS NULL AND claimed_until <= @now AND next_try_at <= @now'),
      failed: p(
        'UPDATE readers SET attempts = attempts + 1, next_try_at = @now + @base * (1 << min(attempts, 10)), claimed_until = 0 WHERE did = @did RETURNING attempts',
      ).pluck(),
      release: p('UPDATE readers SET claimed_until = 0 WHERE did = ?'),
      pending: p(
        'SELECT did FROM readers WHERE backfilled_at IS NULL AND next_try_at <= @now AND claimed_until <= @now ORDER BY last_seen DESC LIMIT @limit',
      ).pluck(),
    }
  }

  /** Notes that a reader was seen; returns their row. */
  touch(did: string, now = Date.now()): ReaderState {
    return this.st.touch.get({ did, now }) as ReaderState
  }

  state(did: string): ReaderState | undefined {
    return this.st.state.get(did) as ReaderState | undefined
  }

  /** Takes a reader's pending backfill for `forMs` (false when it is done, under way elsewhere, or waiting to retry). */
  claim(did: string, forMs: number, now = Date.now()): boolean {
    return this.st.claim.run({ did, until: now + forMs, now }).changes === 1
  }

  /** A backfill failed: the next try waits `baseMs` doubled per failure so far. Returns the failures in a row. */
  failed(did: string, baseMs: number, now = Date.now()): number {
    return (this.st.failed.get({ did, now, base: baseMs }) as number | undefined) ?? 0
  }

  /** Gives a claim back without counting a failure (shutdown). */
  release(did: string): void {
    this.st.release.run(did)
  }

  /** Readers whose backfill is due, most recently seen first. */
  pending(limit: number, now = Date.now()): string[] {
    return this.st.pending.all({ now, limit }) as string[]
  }
}

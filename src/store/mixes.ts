import type { MixEntry } from '../rank/mix.ts'
import type { Sqlite } from './db.ts'

export type MixSource = 'private' | 'record'

export interface StoredMix {
  subscriber: string
  feed: string
  source: MixSource
  agents: MixEntry[]
  fingerprint: string
  updatedAt: number
}

interface Row {
  subscriber: string
  feed: string
  source: MixSource
  agents: string
  fingerprint: string
  updated_at: number
}

const fromRow = (r: Row): StoredMix => ({
  subscriber: r.subscriber,
  feed: r.feed,
  source: r.source,
  agents: JSON.parse(r.agents),
  fingerprint: r.fingerprint,
  updatedAt: r.updated_at,
})

/** Subscribers' saved mixes. The private (XRPC) setting wins over a public record. */
export class MixStore {
  private readonly st

  constructor(db: Sqlite) {
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      effective: p(`SELECT * FROM mixes WHERE subscriber = ? AND feed = ? ORDER BY CASE source WHEN 'private' THEN 0 ELSE 1 END LIMIT 1`),
      put: p(`INSERT INTO mixes (subscriber, feed, source, agents, fingerprint, updated_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(subscriber, feed, source) DO UPDATE SET agents = excluded.agents, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`),
      del: p('DELETE FROM mixes WHERE subscriber = ? AND feed = ? AND source = ?'),
      count: p('SELECT count(*) AS mixes, count(DISTINCT subscriber) AS subscribers FROM mixes'),
      version: p("SELECT coalesce(group_concat(source || ':' || updated_at), '') FROM mixes WHERE subscriber = ? AND feed = ?").pluck(),
      byFingerprint: p('SELECT * FROM mixes WHERE fingerprint = ? LIMIT 1'),
    }
  }

  /** The mix that applies to this subscriber for this feed, if they saved one. */
  effective(subscriber: string, feed: string): StoredMix | undefined {
    const r = this.st.effective.get(subscriber, feed) as Row | undefined
    return r && fromRow(r)
  }

  put(m: Omit<StoredMix, 'updatedAt'>, now = Date.now()): StoredMix {
    this.st.put.run(m.subscriber, m.feed, m.source, JSON.stringify(m.agents), m.fingerprint, now)
    return { ...m, updatedAt: now }
  }

  delete(subscriber: string, feed: string, source: MixSource): boolean {
    return this.st.del.run(subscriber, feed, source).changes > 0
  }

  /** Changes whenever the reader's saved mixes for a feed change. */
  version(subscriber: string, feed: string): string {
    return this.st.version.get(subscriber, feed) as string
  }

  /** Any saved mix with this fingerprint (to explain items ranked by it). */
  byFingerprint(fingerprint: string): StoredMix | undefined {
    const r = this.st.byFingerprint.get(fingerprint) as Row | undefined
    return r && fromRow(r)
  }

  counts(): { mixes: number; subscribers: number } {
    return this.st.count.get() as { mixes: number; subscribers: number }
  }
}

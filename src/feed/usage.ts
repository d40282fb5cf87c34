import type { Feed } from '../feeds.ts'
import type { Sqlite } from '../store/db.ts'
import { decodeFeedContext } from './feed-context.ts'

export interface AgentUsage {
  mixes: number
  feedDefaults: number
  itemsShaped: number
}

const PREFIX = 'agent_items:'

/**
 * Usage per agent, so authors can be credited: how many mixes use it and
 * how many served items it moved. Served items are counted in memory and
 * added to SQLite on flush().
 */
export class UsageCounter {
  private readonly st
  private readonly feeds: Feed[]
  private pending = new Map<string, number>()
  private readonly idsOf = new Map<string, string[]>()
  /** per page served (its contexts array, which serving keeps while the page is cached): how many items each agent moved */
  private readonly perPage = new WeakMap<string[], [string, number][]>()

  constructor(db: Sqlite, feeds: Feed[]) {
    this.feeds = feeds
    this.st = {
      mixes: db.prepare(`SELECT json_extract(je.value, '$.agent') AS agent, count(DISTINCT mixes.subscriber || ' ' || mixes.feed) AS n
        FROM mixes, json_each(mixes.agents) je GROUP BY 1`),
      items: db.prepare(`SELECT substr(name, ${PREFIX.length + 1}) AS agent, value FROM counters WHERE name LIKE '${PREFIX}%'`),
      bump: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
      tx: db.transaction((entries: [string, number][]) => {
        for (const [id, n] of entries) this.st.bump.run(PREFIX + id, n)
      }),
    }
  }

  /** Counts the agents that moved each served item. `contexts` must not change once passed (pages are immutable). */
  served(contexts: string[]): void {
    let counts = this.perPage.get(contexts)
    if (!counts) {
      const byId = new Map<string, number>()
      for (const c of contexts) for (const id of this.agentsOf(c)) byId.set(id, (byId.get(id) ?? 0) + 1)
      this.perPage.set(contexts, (counts = [...byId]))
    }
    for (const [id, n] of counts) this.pending.set(id, (this.pending.get(id) ?? 0) + n)
  }

  /** The agents that moved an item, from its feedContext (decoded once per distinct context). */
  private agentsOf(context: string): string[] {
    let ids = this.idsOf.get(context)
    if (!ids) {
      const a = decodeFeedContext(context)
      ids = a ? a.contributions.map(({ label }) => label.replace(/#\d+$/, '')) : []
      if (this.idsOf.size >= 50_000) this.idsOf.clear()
      this.idsOf.set(context, ids)
    }
    return ids
  }

  flush(): void {
    if (!this.pending.size) return
    const entries = [...this.pending]
    this.pending = new Map()
    this.st.tx(entries)
  }

  /** Usage of every agent that has any. */
  all(): Map<string, AgentUsage> {
    this.flush()
    const out = new Map<string, AgentUsage>()
    const get = (id: string) => {
      let u = out.get(id)
      if (!u) out.set(id, (u = { mixes: 0, feedDefaults: 0, itemsShaped: 0 }))
      return u
    }
    for (const r of this.st.mixes.all() as { agent: string; n: number }[]) if (r.agent) get(r.agent).mixes = r.n
    for (const r of this.st.items.all() as { agent: string; value: number }[]) get(r.agent).itemsShaped = r.value
    for (const f of this.feeds) {
      for (const id of new Set([...f.defaultMix, ...f.baseMix].map((e) => e.agent))) get(id).feedDefaults++
    }
    return out
  }
}

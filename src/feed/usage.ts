import type { Feed } from '../feeds.ts'
import { decodeFeedContext } from '../rank/feed-context.ts'
import type { UsageStore } from './ports.ts'

export interface AgentUsage {
  mixes: number
  feedDefaults: number
  itemsShaped: number
}

/**
 * Usage per agent, so authors can be credited: how many mixes use it and
 * how many served items it moved. Served items are counted in memory and
 * added to the store on flush().
 */
export class UsageCounter {
  private readonly store: UsageStore
  private readonly feeds: Feed[]
  private pending = new Map<string, number>()
  private readonly idsOf = new Map<string, string[]>()
  /** per page served (its contexts array, which serving keeps while the page is cached): how many items each agent moved */
  private readonly perPage = new WeakMap<string[], [string, number][]>()

  constructor(store: UsageStore, feeds: Feed[]) {
    this.store = store
    this.feeds = feeds
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
    this.store.addItems(entries)
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
    for (const r of this.store.mixesPerAgent()) if (r.agent) get(r.agent).mixes = r.n
    for (const r of this.store.itemsPerAgent()) get(r.agent).itemsShaped = r.value
    for (const f of this.feeds) {
      for (const id of new Set([...f.defaultMix, ...f.baseMix].map((e) => e.agent))) get(id).feedDefaults++
    }
    return out
  }
}

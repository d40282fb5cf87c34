import type { Sqlite } from './db.ts'

const PREFIX = 'agent_items:'

/** Agents' usage as stored: the mixes naming each agent, and the `counters` of items each one moved. */
export class UsageRepository {
  private readonly st
  private readonly addTx: (entries: [string, number][]) => void

  constructor(db: Sqlite) {
    this.st = {
      mixes: db.prepare(`SELECT json_extract(je.value, '$.agent') AS agent, count(DISTINCT mixes.subscriber || ' ' || mixes.feed) AS n
        FROM mixes, json_each(mixes.agents) je GROUP BY 1`),
      items: db.prepare(`SELECT substr(name, ${PREFIX.length + 1}) AS agent, value FROM counters WHERE name LIKE '${PREFIX}%'`),
      bump: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
    }
    this.addTx = db.transaction((entries: [string, number][]) => {
      for (const [id, n] of entries) this.st.bump.run(PREFIX + id, n)
    })
  }

  /** How many (reader, feed) mixes name each agent. */
  mixesPerAgent(): { agent: string; n: number }[] {
    return this.st.mixes.all() as { agent: string; n: number }[]
  }

  /** How many served items each agent moved, as counted so far. */
  itemsPerAgent(): { agent: string; value: number }[] {
    return this.st.items.all() as { agent: string; value: number }[]
  }

  /** Adds served items to agents' counts ([agent id, items]), in one transaction. */
  addItems(entries: [string, number][]): void {
    this.addTx(entries)
  }
}

import type { MixEntry } from './mix.ts'

/** The `topics` agent's id. */
export const TOPICS_AGENT = 'topics'

/** Interests a reader's app may forward that count (the first ones known, in vocabulary order): a bound on distinct lists. */
export const MAX_INTERESTS = 3

/** The weight of the interests entry a reader without a mix of their own gets. */
export const COLD_START_WEIGHT = 30

/**
 * A reader's mix with the interests their app forwards applied: a `topics`
 * entry whose topics are left empty gets them; a reader without a mix of
 * their own (`own` false) gets the feed's default plus a `topics` entry at
 * COLD_START_WEIGHT. Returns the entries unchanged when nothing applies.
 */
export function withInterests(agents: MixEntry[], interests: readonly string[], own: boolean): MixEntry[] {
  if (interests.length === 0) return agents
  const empty = (e: MixEntry) => e.agent === TOPICS_AGENT && !(Array.isArray(e.options?.topics) && e.options.topics.length > 0)
  if (agents.some(empty)) return agents.map((e) => (empty(e) ? { ...e, options: { ...e.options, topics: [...interests] } } : e))
  if (own || agents.some((e) => e.agent === TOPICS_AGENT)) return agents
  return [...agents, { agent: TOPICS_AGENT, weight: COLD_START_WEIGHT, options: { topics: [...interests] } }]
}

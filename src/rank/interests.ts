import { knownTopics } from '../score/agents/topics.ts'
import type { MixEntry } from './mix.ts'

/** The `topics` agent's id. */
export const TOPICS_AGENT = 'topics'

/** Interests a reader's app may forward that count (the first ones known, in vocabulary order): a bound on distinct lists. */
export const MAX_INTERESTS = 3

/** The weight of the interests entry a reader without a mix of their own gets. */
export const COLD_START_WEIGHT = 30

/**
 * The interests a request carries: the `x-atproto-bsky-topics` header (newer
 * apps), else `x-bsky-topics`, a comma-separated list of interest names.
 * Unknown names are left out, and at most MAX_INTERESTS are kept.
 */
export function interestsOf(header: (name: string) => string | undefined): string[] {
  const raw = header('x-atproto-bsky-topics') ?? header('x-bsky-topics')
  if (!raw) return []
  return knownTopics(raw.slice(0, 1000).split(',')).slice(0, MAX_INTERESTS)
}

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

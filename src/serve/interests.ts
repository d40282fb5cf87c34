import { MAX_INTERESTS } from '../rank/interests.ts'
import { knownTopics } from '../score/agents/topics.ts'

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

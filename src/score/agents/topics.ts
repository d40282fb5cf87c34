import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'
import vocabularies from './topic-vocabularies.json' with { type: 'json' }
import { escapeRegExp } from '../../util/regexp.ts'

/** One interest topic's vocabulary, as shipped in topic-vocabularies.json. */
export interface TopicVocabulary {
  title: string
  words: string[]
  tags: string[]
}

/** The interest topics this server knows, keyed by the name a Bluesky app forwards in `x-bsky-topics`. */
export const TOPICS: ReadonlyMap<string, TopicVocabulary> = new Map(Object.entries(vocabularies.topics))

/** Keeps the known topic ids of a list (any case, `#` allowed), in vocabulary order, without repeats. */
export function knownTopics(names: Iterable<string>): string[] {
  const wanted = new Set([...names].map((n) => n.trim().replace(/^#/, '').toLowerCase()))
  return [...TOPICS.keys()].filter((t) => wanted.has(t))
}

/** A compiled topic: a global whole-word matcher for its words, and its tags. */
interface Matcher {
  words: RegExp
  tags: ReadonlySet<string>
}

const matchers = new Map<string, Matcher>()

function matcherOf(topic: string): Matcher {
  let m = matchers.get(topic)
  if (!m) {
    const v = TOPICS.get(topic)!
    const alts = [...new Set(v.words.map((w) => w.toLowerCase()))].sort((a, b) => b.length - a.length).map(escapeRegExp)
    m = { words: new RegExp(`(?<![\\p{L}\\p{N}_#])(?:${alts.join('|')})(?![\\p{L}\\p{N}_])`, 'giu'), tags: new Set(v.tags) }
    matchers.set(topic, m)
  }
  return m
}

/**
 * How strongly a post is about one topic, from 0 to 1: each distinct
 * vocabulary word in the text counts ½, each of the topic's hashtags counts 1.
 * One stray word ("goal", "album") is a hint; two words or a hashtag make
 * the topic certain.
 */
export function topicStrength(text: string, tags: readonly string[], topic: string): number {
  const m = matcherOf(topic)
  let s = 0
  for (const t of tags) if (m.tags.has(t)) s += 1
  if (s >= 1) return 1
  const seen = new Set<string>()
  for (const hit of text.matchAll(m.words)) {
    seen.add(hit[0].toLowerCase())
    if (seen.size >= 2) return 1
  }
  return seen.size / 2
}

const topicId = z
  .string()
  .trim()
  .transform((t) => t.replace(/^#/, '').toLowerCase())
  .refine((t) => TOPICS.has(t), { message: `unknown topic; known topics: ${[...TOPICS.keys()].join(', ')}` })

/**
 * Interest topics: posts about the topics the reader chose, by the shipped
 * vocabularies. When a reader leaves `topics` empty, the server fills in the
 * interests their app forwards (the `x-bsky-topics` header) before ranking,
 * so readers with the same interests share one list.
 */
export default defineAgent({
  id: 'topics',
  version: '1.0.0',
  title: 'Your interests',
  description:
    'Lifts posts about the interest topics you choose (news, science, art, gaming, pets… the topics a Bluesky app offers), recognised by a shipped vocabulary of words and hashtags per topic: a hashtag or two words of a topic make a post fully about it, one word half. The score adds up over your topics. Left empty, the topics your app forwards are used. With requireMatch, posts about none of them are dropped.',
  api: SDK_API_VERSION,
  options: z.object({
    topics: z
      .array(topicId)
      .max(TOPICS.size)
      .default([])
      .transform((ts) => knownTopics(ts)),
    /** drop posts about none of the topics */
    requireMatch: z.boolean().default(false),
  }),
  needs: ['text', 'tags'],
  scoreBatch(posts, { options }) {
    if (options.topics.length === 0) return posts.map(() => null)
    return posts.map((p) => {
      let score = 0
      for (const t of options.topics) score += topicStrength(p.text, p.tags, t)
      return score === 0 && options.requireMatch ? DROP : score
    })
  },
})

import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'
import { escapeRegExp } from '../../util/regexp.ts'

const word = z.string().trim().min(1).max(100)

/** Escapes a literal for use inside a RegExp. */

/**
 * A case-insensitive, whole-word matcher for a list of words or phrases.
 * "Whole word" means no letter, digit or underscore on either side, so
 * "cat" matches "Cat!" and "#cat" but not "category".
 */
export function wordMatcher(words: string[]): RegExp | null {
  if (words.length === 0) return null
  const alts = [...new Set(words.map((w) => w.toLowerCase()))].sort((a, b) => b.length - a.length).map(escapeRegExp)
  return new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alts.join('|')})(?![\\p{L}\\p{N}_])`, 'iu')
}

/** Include and exclude words: an include match scores 1, an exclude match drops the post. */
export default defineAgent({
  id: 'keyword',
  version: '1.0.0',
  title: 'Keywords',
  description:
    'Scores 1 for posts containing any "include" word or phrase (whole word, any case), 0 otherwise; drops posts containing any "exclude" word. With requireMatch, posts matching no include word are dropped too.',
  api: SDK_API_VERSION,
  options: z.object({
    include: z.array(word).max(200).default([]),
    exclude: z.array(word).max(200).default([]),
    /** drop posts that match no include word (turns the agent into a topic filter) */
    requireMatch: z.boolean().default(false),
  }),
  needs: ['text'],
  scoreBatch(posts, { options }) {
    const inc = wordMatcher(options.include)
    const exc = wordMatcher(options.exclude)
    return posts.map((p) => {
      if (exc?.test(p.text)) return DROP
      if (inc?.test(p.text)) return 1
      return options.requireMatch && inc ? DROP : 0
    })
  },
})

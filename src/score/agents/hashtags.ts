import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

const tag = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .transform((t) => t.replace(/^#/, '').toLowerCase())

/** Topics by hashtag: lift posts tagged with chosen tags, drop posts with unwanted ones. */
export default defineAgent({
  id: 'hashtags',
  version: '1.0.0',
  title: 'Hashtags',
  description:
    'Scores a post by how many of the "include" hashtags it carries (in its tags or text); drops posts carrying any "exclude" hashtag. With requireMatch, posts with none of the include tags are dropped.',
  api: SDK_API_VERSION,
  options: z.object({
    include: z.array(tag).max(100).default([]),
    exclude: z.array(tag).max(100).default([]),
    requireMatch: z.boolean().default(false),
  }),
  needs: ['tags'],
  scoreBatch(posts, { options }) {
    const inc = new Set(options.include)
    const exc = new Set(options.exclude)
    return posts.map((p) => {
      let hits = 0
      for (const t of p.tags) {
        if (exc.has(t)) return DROP
        if (inc.has(t)) hits++
      }
      if (hits === 0 && options.requireMatch && inc.size > 0) return DROP
      return hits
    })
  },
})

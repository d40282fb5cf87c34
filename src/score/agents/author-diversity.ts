import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

/**
 * Author diversity: no one floods the feed. Sees the whole candidate list at
 * once: each author keeps at most maxPerAuthor posts (their newest), and
 * authors who post rarely are lifted over prolific ones.
 */
export default defineAgent({
  id: 'author-diversity',
  version: '1.0.0',
  title: 'Author diversity',
  description:
    "Keeps at most maxPerAuthor posts per author (their newest) and drops the rest; scores each post 1 / (number of that author's posts among the candidates), lifting people who rarely post.",
  api: SDK_API_VERSION,
  options: z.object({
    maxPerAuthor: z.number().int().min(1).max(100).default(3),
  }),
  needs: ['author', 'candidates'],
  scoreBatch(posts, { options }) {
    const byAuthor = new Map<string, number[]>()
    posts.forEach((p, i) => {
      const list = byAuthor.get(p.author)
      if (list) list.push(i)
      else byAuthor.set(p.author, [i])
    })
    const out = new Array<number | typeof DROP>(posts.length)
    for (const idx of byAuthor.values()) {
      idx.sort((a, b) => posts[b].createdAt - posts[a].createdAt)
      idx.forEach((i, rank) => {
        out[i] = rank < options.maxPerAuthor ? 1 / idx.length : DROP
      })
    }
    return out
  },
})

import { z } from 'zod'
import { defineAgent, DROP, postKeyOf, SDK_API_VERSION } from '../sdk.ts'

/**
 * Popular with friends: a personal agent over the like graph. A post scores
 * by how many of the accounts the reader follows liked or reposted it, on a
 * log scale (the fifth friend adds less than the second).
 */
export default defineAgent({
  id: 'friends-liked',
  version: '1.0.0',
  title: 'Popular with friends',
  description:
    'Lifts posts that people you follow liked or reposted: log2(1 + n) for n of them (1 for one friend, about 2.3 for four). Posts fewer than minFriends of them engaged with score 0, or are dropped with only. Reads the likes and reposts this server has seen in the feed window; anonymous readers get no opinion.',
  api: SDK_API_VERSION,
  options: z.object({
    /** friends who must have liked or reposted a post for it to count */
    minFriends: z.number().int().min(1).max(100).default(1),
    /** drop posts too few friends engaged with */
    only: z.boolean().default(false),
  }),
  needs: ['subscriber'],
  scoreBatch(posts, { options, subscriber }) {
    const seen = subscriber?.friendEngagement
    if (!seen) return posts.map(() => null)
    return posts.map((p) => {
      const n = seen.get(postKeyOf(p)) ?? 0
      if (n >= options.minFriends) return Math.log2(1 + n)
      return options.only ? DROP : 0
    })
  },
})

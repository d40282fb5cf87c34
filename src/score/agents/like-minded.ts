import { z } from 'zod'
import { defineAgent, DROP, postKeyOf, SDK_API_VERSION } from '../sdk.ts'

/**
 * "For You"-style collaborative filtering: a personal agent over the like
 * graph. Readers whose recent likes overlap yours are your like-minded
 * readers; a post scores by the summed weight of those who liked it (see
 * LikeGraph.coLikes for the weights). Posts you liked yourself get none.
 */
export default defineAgent({
  id: 'like-minded',
  version: '1.0.0',
  title: 'Liked by people like you',
  description:
    'Lifts posts liked by readers whose likes overlap yours, each weighted by how much you share (rarely liked posts in common count more than popular ones, and someone who likes everything counts less). Needs some likes of yours in the feed window; until then, and for anonymous readers, it has no opinion. With only, posts no like-minded reader liked are dropped.',
  api: SDK_API_VERSION,
  options: z.object({
    /** drop posts no like-minded reader liked */
    only: z.boolean().default(false),
  }),
  needs: ['subscriber'],
  scoreBatch(posts, { options, subscriber }) {
    const co = subscriber?.coLikes
    if (!co || co.size === 0) return posts.map(() => null)
    return posts.map((p) => {
      const w = co.get(postKeyOf(p))
      if (w !== undefined) return w
      return options.only ? DROP : 0
    })
  },
})

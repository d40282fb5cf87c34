import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

/**
 * Followed and mutual authors: a personal agent. It reads the reader's
 * follow graph as this server has seen it on the firehose, so a list with
 * it is ranked for each reader on their own.
 */
export default defineAgent({
  id: 'follows',
  version: '1.0.0',
  title: 'People you follow',
  description:
    'Scores 1 for posts by accounts you follow ("followed"), by accounts you follow that follow you back ("mutual"), or by accounts you do not follow yet ("discover"), and 0 otherwise. With only, other posts are dropped. Anonymous readers get no opinion.',
  api: SDK_API_VERSION,
  options: z.object({
    mode: z.enum(['followed', 'mutual', 'discover']).default('followed'),
    only: z.boolean().default(false),
    /** count the reader's own posts as followed */
    includeSelf: z.boolean().default(true),
  }),
  needs: ['author', 'subscriber'],
  scoreBatch(posts, { options, subscriber }) {
    if (!subscriber) return posts.map(() => null)
    return posts.map((p) => {
      const self = p.author === subscriber.did
      const followed = subscriber.follows.has(p.author) || (options.includeSelf && self)
      const hit =
        options.mode === 'followed' ? followed : options.mode === 'mutual' ? followed && (self || subscriber.followers.has(p.author)) : !followed && !self
      if (hit) return 1
      return options.only ? DROP : 0
    })
  },
})

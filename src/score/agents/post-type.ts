import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

const policy = z.enum(['keep', 'drop', 'only'])

/**
 * Replies and quotes policy. Feeds list posts, not repost events: reposts
 * count toward engagement instead.
 */
export default defineAgent({
  id: 'post-type',
  version: '1.0.0',
  title: 'Replies and quotes',
  description:
    'Keeps, drops, or shows only replies and quote posts. "only" drops every post that is not of that type. Self-replies that continue the author\'s own thread can be kept even when replies are dropped.',
  api: SDK_API_VERSION,
  options: z.object({
    replies: policy.default('drop'),
    quotes: policy.default('keep'),
    keepThreads: z.boolean().default(true),
  }),
  needs: ['reply', 'embed'],
  scoreBatch(posts, { options }) {
    return posts.map((p) => {
      const isReply = p.replyParent !== null
      const isThread = isReply && p.replyParent!.startsWith(`at://${p.author}/`) && p.replyRoot!.startsWith(`at://${p.author}/`)
      const isQuote = p.quote !== null
      const replyOk = !isReply ? options.replies !== 'only' : options.replies !== 'drop' || (options.keepThreads && isThread)
      const quoteOk = !isQuote ? options.quotes !== 'only' : options.quotes !== 'drop'
      return replyOk && quoteOk ? 0 : DROP
    })
  },
})

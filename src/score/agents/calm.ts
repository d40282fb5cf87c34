import sentiment from 'wink-sentiment'
import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

/**
 * Calm: a lexicon-based sentiment score (wink-sentiment: AFINN with emoji
 * and negation handling) that lifts friendly posts and can drop hostile
 * ones. English only: other languages get no opinion.
 */
export default defineAgent({
  id: 'calm',
  version: '1.0.0',
  title: 'Calm',
  description:
    'Scores the tone of English posts from -5 (hostile) to +5 (warm) with the wink-sentiment lexicon (handles emoji and negation). Posts below dropBelow are dropped. Posts in other languages get no opinion.',
  api: SDK_API_VERSION,
  options: z.object({
    dropBelow: z.number().min(-5).max(5).optional(),
  }),
  needs: ['text', 'langs'],
  scoreBatch(posts, { options }) {
    return posts.map((p) => {
      if (p.langs.length > 0 && !p.langs.includes('en')) return null
      const s = Math.max(-5, Math.min(5, sentiment(p.text).normalizedScore))
      return options.dropBelow !== undefined && s < options.dropBelow ? DROP : s
    })
  },
})

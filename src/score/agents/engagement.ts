import { z } from 'zod'
import { defineAgent, SDK_API_VERSION } from '../sdk.ts'

const HOUR = 3_600_000

/** Likes and reposts per hour since posting: what is taking off right now. */
export default defineAgent({
  id: 'engagement',
  version: '1.0.0',
  title: 'Engagement velocity',
  description: 'Likes and reposts per hour since posting. Young posts count from a minimum age so one early like does not dominate.',
  api: SDK_API_VERSION,
  options: z.object({
    repostWeight: z.number().min(0).max(10).default(1),
    minAgeMinutes: z
      .number()
      .min(1)
      .max(24 * 60)
      .default(15),
  }),
  needs: ['engagement', 'time'],
  scoreBatch(posts, { options, now }) {
    const floor = options.minAgeMinutes / 60
    return posts.map((p) => {
      const hours = Math.max(floor, (now - p.createdAt) / HOUR)
      return (p.likeCount + options.repostWeight * p.repostCount) / hours
    })
  },
  scoreColumns({ length, createdAt, likeCount, repostCount }, { options, now }) {
    const floor = options.minAgeMinutes / 60
    const out = new Float64Array(length)
    for (let i = 0; i < length; i++) out[i] = (likeCount[i] + options.repostWeight * repostCount[i]) / Math.max(floor, (now - createdAt[i]) / HOUR)
    return out
  },
})

import { z } from 'zod'
import { defineAgent, SDK_API_VERSION } from '../sdk.ts'

const HOUR = 3_600_000

/** Newer posts score higher: exponential decay with a configurable half-life. */
export default defineAgent({
  id: 'recency',
  version: '1.0.0',
  title: 'Recency',
  description: 'Newer posts first. The score halves every half-life (hours).',
  api: SDK_API_VERSION,
  options: z.object({
    halfLifeHours: z
      .number()
      .positive()
      .max(24 * 30)
      .default(6),
  }),
  needs: ['time'],
  scoreBatch(posts, { options, now }) {
    const k = Math.LN2 / (options.halfLifeHours * HOUR)
    return posts.map((p) => Math.exp(-k * Math.max(0, now - p.createdAt)))
  },
  scoreColumns({ length, createdAt }, { options, now }) {
    const k = Math.LN2 / (options.halfLifeHours * HOUR)
    const out = new Float64Array(length)
    for (let i = 0; i < length; i++) out[i] = Math.exp(-k * Math.max(0, now - createdAt[i]))
    return out
  },
})

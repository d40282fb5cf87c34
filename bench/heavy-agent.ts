/**
 * A CPU-heavy static agent for the scaling benchmark: it stands in for an
 * agent that runs a small model on each post's text. It spins `costUs`
 * microseconds per post, then scores from a hash of the text (so the work
 * cannot be skipped). Installed with SKYSIFT_AGENTS=bench/heavy-agent.ts.
 */
import { z } from 'zod'
import { defineAgent, SDK_API_VERSION } from '../src/score/sdk.ts'

export default defineAgent({
  id: 'bench-heavy',
  version: '1.0.0',
  title: 'Benchmark: CPU-heavy',
  description: 'Spins costUs microseconds of CPU per post (a stand-in for a model), then scores from a hash of the text.',
  api: SDK_API_VERSION,
  options: z.object({ costUs: z.number().int().min(0).max(100_000).default(2000) }),
  needs: ['text'],
  scoreBatch(posts, { options }) {
    return posts.map((p) => {
      const until = performance.now() + options.costUs / 1000
      let h = 2166136261
      do {
        for (let i = 0; i < p.text.length; i++) h = Math.imul(h ^ p.text.charCodeAt(i), 16777619)
      } while (performance.now() < until)
      return (h >>> 0) / 4294967296
    })
  },
})

import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

const label = z.string().trim().min(1).max(128)

/** The adult and graphic self-labels Bluesky clients hide by default. */
export const DEFAULT_DROP_LABELS = ['porn', 'sexual', 'nudity', 'graphic-media', 'gore']

/** Content labels: drop or push down posts that carry chosen labels. */
export default defineAgent({
  id: 'labels',
  version: '1.0.0',
  title: 'Content labels',
  description:
    'Drops posts carrying any label in "drop" and scores -1 for each label in "downrank" (0 for other posts), so a positive weight pushes labelled posts down. Reads the labels authors put on their own posts and, for labelers you name (their DIDs), the labels those labelers put on posts.',
  api: SDK_API_VERSION,
  options: z.object({
    drop: z.array(label).max(100).default(DEFAULT_DROP_LABELS),
    downrank: z.array(label).max(100).default([]),
    /** labeler services (DIDs) whose labels count too */
    labelers: z
      .array(z.string().regex(/^did:(plc|web):[a-zA-Z0-9._:%-]{1,200}$/, 'a labeler DID'))
      .max(10)
      .default([]),
  }),
  needs: ['labels'],
  // labels from labelers arrive after a post is seen: such instances are scored when a list is ranked
  dynamicWith: (o) => o.labelers.length > 0,
  labelersWith: (o) => o.labelers,
  scoreBatch(posts, { options }) {
    const drop = new Set(options.drop)
    const down = new Set(options.downrank)
    return posts.map((p) => {
      let s = 0
      for (const l of p.labels) {
        if (drop.has(l)) return DROP
        if (down.has(l)) s--
      }
      return s
    })
  },
})

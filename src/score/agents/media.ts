import { z } from 'zod'
import type { AgentPost } from '../sdk.ts'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

export const MEDIA_KINDS = ['images', 'video', 'link', 'none'] as const
type MediaKind = (typeof MEDIA_KINDS)[number]

/** What a post shows: images, a video, a link card, or just text (a quote counts as its media). */
export function mediaOf(p: AgentPost): MediaKind {
  switch (p.embed) {
    case 'images':
      return 'images'
    case 'video':
      return 'video'
    case 'external':
      return 'link'
    default:
      // recordWithMedia carries images or video we do not distinguish here; treat as images
      return p.embed === 'recordWithMedia' ? 'images' : 'none'
  }
}

/** Media type: keep or lift posts with the kinds of media a reader wants. */
export default defineAgent({
  id: 'media',
  version: '1.0.0',
  title: 'Media type',
  description:
    'Prefers posts with the chosen kinds of media: images, video, link (a link card) or none (text only). In "filter" mode other posts are dropped; in "boost" mode they score 0 and matching posts 1.',
  api: SDK_API_VERSION,
  options: z.object({
    kinds: z.array(z.enum(MEDIA_KINDS)).min(1).max(4).default(['images', 'video']),
    mode: z.enum(['filter', 'boost']).default('boost'),
  }),
  needs: ['embed'],
  scoreBatch(posts, { options }) {
    const want = new Set<MediaKind>(options.kinds)
    return posts.map((p) => (want.has(mediaOf(p)) ? 1 : options.mode === 'filter' ? DROP : 0))
  },
})

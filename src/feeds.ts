import fs from 'node:fs'
import { z } from 'zod'
import { mixEntrySchema, resolveMix, type MixEntry, type ResolvedMix } from './rank/mix.ts'
import type { AgentHost } from './score/host.ts'

const feedSchema = z.object({
  rkey: z.string().regex(/^[a-zA-Z0-9._~-]{1,15}$/, 'record key: up to 15 letters, digits, . _ ~ -'),
  displayName: z
    .string()
    .min(1)
    .refine((s) => [...new Intl.Segmenter().segment(s)].length <= 24, 'at most 24 graphemes'),
  description: z.string().max(3000).default(''),
  /** the mix new and anonymous readers get */
  defaultMix: z.array(mixEntrySchema).min(1).max(16),
  /** entries every reader gets on top of their own mix (filters that define the feed) */
  baseMix: z.array(mixEntrySchema).max(8).default([]),
  /** how far back candidates reach */
  windowHours: z
    .number()
    .positive()
    .max(24 * 30)
    .default(48),
  /** how many of the newest posts in the window are ranked */
  maxCandidates: z.number().int().min(10).max(200_000).default(5000),
  contentMode: z.enum(['app.bsky.feed.defs#contentModeUnspecified', 'app.bsky.feed.defs#contentModeVideo']).optional(),
  avatar: z.string().optional(),
})

const feedsFileSchema = z.object({ feeds: z.array(feedSchema).min(1).max(100) })

export type FeedConfig = z.infer<typeof feedSchema>

/** A hosted feed with its validated default mix. */
export interface Feed extends FeedConfig {
  uri: string
  base: MixEntry[]
  defaults: ResolvedMix
}

/** Reads and validates the feeds file; throws one error naming every problem. */
export function loadFeeds(file: string, publisherDid: string, host: AgentHost): Feed[] {
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new Error(`feeds file ${file}: ${(err as Error).message}`)
  }
  const parsed = feedsFileSchema.safeParse(raw)
  if (!parsed.success) {
    throw new Error(`feeds file ${file}:\n  ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  ')}`)
  }
  const seen = new Set<string>()
  return parsed.data.feeds.map((f, i) => {
    if (seen.has(f.rkey)) throw new Error(`feeds file ${file}: feeds.${i}.rkey: duplicate ${f.rkey}`)
    seen.add(f.rkey)
    try {
      const base = f.baseMix as MixEntry[]
      return { ...f, uri: `at://${publisherDid}/app.bsky.feed.generator/${f.rkey}`, base, defaults: resolveMix(host, f.defaultMix, base) }
    } catch (err) {
      throw new Error(`feeds file ${file}: feeds.${i} (${f.rkey}): ${(err as Error).message}`)
    }
  })
}

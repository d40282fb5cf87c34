import type { Context } from 'hono'
import type { Feed } from '../../feeds.ts'
import { parseAtUri } from '../../util/at-ids.ts'
import type { MixView } from '../../feed/mixes.ts'
import { invalidRequest, XrpcError } from '../errors.ts'
import type { AppDeps } from './deps.ts'

/** A single query parameter; repeated or missing-but-required parameters are a 400. */
export function param(c: Context, name: string, required: true): string
export function param(c: Context, name: string, required?: false): string | undefined
export function param(c: Context, name: string, required = false): string | undefined {
  const all = c.req.queries(name)
  if (!all || all.length === 0) {
    if (required) throw invalidRequest(`Error: Params must have the property "${name}"`)
    return undefined
  }
  if (all.length > 1) throw invalidRequest(`Error: Params property "${name}" must be given once`)
  return all[0]
}

export const LIMIT_RANGE = 'Error: limit must be an integer from 1 to 100'

/** The `limit` parameter: 50 when absent, else an integer from 1 to 100. */
export function limitParam(c: Context): number {
  const raw = param(c, 'limit')
  if (raw === undefined) return 50
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN
  if (!(n >= 1 && n <= 100)) throw invalidRequest(LIMIT_RANGE)
  return n
}

/** The hosted feed a `feed` at-uri names (by rkey too when no publisher DID is set); a 400 otherwise. */
export function findFeed(d: Pick<AppDeps, 'config'> & { feeds: Pick<AppDeps['feeds'], 'feed' | 'feedByRkey'> }, uri: string): Feed {
  const parts = parseAtUri(uri)
  if (!parts) throw invalidRequest('Error: feed must be a valid at-uri')
  const feed =
    d.feeds.feed(uri) ?? (d.config.publisherDid ? undefined : parts.collection === 'app.bsky.feed.generator' ? d.feeds.feedByRkey(parts.rkey) : undefined)
  if (!feed) throw new XrpcError(400, 'UnknownFeed', 'Unknown feed')
  return feed
}

/** A reader's mix as the mix methods answer it. */
export const mixView = (v: MixView) => ({
  feed: v.feed,
  agents: v.agents,
  source: v.source,
  fingerprint: v.fingerprint,
  ...(v.updatedAt ? { updatedAt: new Date(v.updatedAt).toISOString() } : {}),
  nudges: v.nudges,
})

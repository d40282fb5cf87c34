import { randomBytes } from 'node:crypto'
import type { Hono } from 'hono'
import { requestIdFor } from '../../feed/request-id.ts'
import { interestsOf } from '../interests.ts'
import { invalidRequest } from '../errors.ts'
import { requesterOf } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { findFeed, limitParam, param } from './util.ts'

const NSID = 'app.bsky.feed.getFeedSkeleton'

/** Request ids: 16 hex digits, a random per-process prefix and a counter (randomBytes per request cost 5% of serving). */
const REQ_PREFIX = randomBytes(4).toString('hex')
let reqSeq = 0
/** A new request id (before requestIdFor names the feed in it). */
export const nextReqId = (): string => REQ_PREFIX + (reqSeq = (reqSeq + 1) >>> 0).toString(16).padStart(8, '0')

/** app.bsky.feed.getFeedSkeleton: a page of a feed, for the reader the token names (or anyone). */
export function getFeedSkeleton(app: Hono, d: AppDeps): void {
  app.get(`/xrpc/${NSID}`, async (c) => {
    const feed = findFeed(d, param(c, 'feed', true))
    const limit = limitParam(c)
    const cursor = param(c, 'cursor')
    if (cursor !== undefined && cursor.length > 200) throw invalidRequest('Error: malformed cursor')
    const who = await requesterOf(d, c, NSID)
    const reqId = requestIdFor(nextReqId(), d.feeds.feeds.indexOf(feed))
    // @NOTE the interests an app forwards count for signed-in readers only (see docs): a stranger's header builds no list
    const page = d.feeds.skeleton(feed, who.did, limit, cursor, who.did ? interestsOf((h) => c.req.header(h)) : [])
    d.feeds.noteRequest(reqId, feed)
    d.log.debug({ reqId, feed: feed.rkey, viewer: who.did, anon: who.reason, n: page.feed.length }, 'feed skeleton')
    return c.body(d.feeds.skeletonJson(page, reqId), 200, { 'content-type': 'application/json' })
  })
}

import type { Hono } from 'hono'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { findFeed } from './util.ts'

const NSID = 'app.skysift.feed.deleteMix'

/** app.skysift.feed.deleteMix: forgets the subscriber's private mix for a feed. */
export function deleteMix(app: Hono, d: AppDeps): void {
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: 64, lexicons: d.lexicons } }), async (c) => {
    const feed = findFeed(d, (c.var.input as { feed: string }).feed)
    return c.json({ deleted: await d.feeds.deleteMix(feed, c.var.viewer) })
  })
}

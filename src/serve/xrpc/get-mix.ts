import type { Hono } from 'hono'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { findFeed, mixView, param } from './util.ts'

const NSID = 'app.skysift.feed.getMix'

/** app.skysift.feed.getMix: the subscriber's mix for one feed (theirs, their record's, or the default). */
export function getMix(app: Hono, d: AppDeps): void {
  app.get(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required' }), (c) => {
    const feed = findFeed(d, param(c, 'feed', true))
    return c.json(mixView(d.feeds.viewMix(feed, c.var.viewer)))
  })
}

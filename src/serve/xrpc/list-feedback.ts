import type { Hono } from 'hono'
import { invalidRequest } from '../errors.ts'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { findFeed, LIMIT_RANGE, param } from './util.ts'

const NSID = 'app.skysift.feed.listFeedback'

/** app.skysift.feed.listFeedback: the subscriber's latest interactions with a feed, with what each changed in their mix. */
export function listFeedback(app: Hono, d: AppDeps): void {
  app.get(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required' }), (c) => {
    const feed = findFeed(d, param(c, 'feed', true))
    const raw = param(c, 'limit')
    const limit = raw === undefined ? 50 : Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidRequest(LIMIT_RANGE)
    const feedback = d.feeds.feedback(feed, c.var.viewer, limit).map((f) => ({
      id: f.id,
      event: f.event,
      post: f.postUri,
      createdAt: new Date(f.at).toISOString(),
      undone: f.undone,
      nudges: f.nudges.map((n) => ({ agent: n.label, delta: n.delta })),
    }))
    return c.json({ feedback })
  })
}

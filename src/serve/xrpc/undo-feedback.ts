import type { Hono } from 'hono'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'

const NSID = 'app.skysift.feed.undoFeedback'

/** app.skysift.feed.undoFeedback: takes back one of the subscriber's interactions. */
export function undoFeedback(app: Hono, d: AppDeps): void {
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: 64, lexicons: d.lexicons } }), (c) => {
    const input = c.var.input as { id: number }
    return c.json({ undone: d.feeds.undoFeedback(c.var.viewer, input.id) !== null })
  })
}

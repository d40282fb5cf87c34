import type { Hono } from 'hono'
import { XrpcError } from '../errors.ts'
import { requesterOf } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { param } from './util.ts'

const NSID = 'app.skysift.feed.explainItem'

/** app.skysift.feed.explainItem: why a post is in a feed, from the feedContext it was served with. */
export function explainItem(app: Hono, d: AppDeps): void {
  app.get(`/xrpc/${NSID}`, async (c) => {
    const feedContext = param(c, 'feedContext', true)
    // @NOTE a private mix is explained only to its reader: the token (optional) says who asks
    const who = await requesterOf(d, c, NSID)
    const e = d.feeds.explain(feedContext, who.did)
    if (!e) throw new XrpcError(400, 'UnknownContext', 'not a feedContext this server made for you')
    return c.json({
      reasons: e.reasons.map((r) => ({ agent: r.agent, label: r.label, title: r.title, value: r.value, ...(r.detail ? { detail: r.detail } : {}) })),
      text: e.text,
    })
  })
}

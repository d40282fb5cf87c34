import type { Hono } from 'hono'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { findFeed } from './util.ts'

const NSID = 'app.skysift.feed.previewMix'

/** app.skysift.feed.previewMix: a page of a feed as an unsaved mix would make it (for anyone; the token only personalises). */
export function previewMix(app: Hono, d: AppDeps): void {
  const spec = {
    nsid: NSID,
    auth: 'optional',
    input: { maxKiB: 64, lexicons: d.lexicons },
    busy: 'too many previews are waiting; try again in a moment',
  } as const
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, spec), async (c) => {
    const input = c.var.input as { feed: string; agents: unknown; limit?: number }
    const feed = findFeed(d, input.feed)
    return c.json(await d.feeds.previewMix(feed, c.var.requester.did, input.agents, input.limit ?? 30))
  })
}

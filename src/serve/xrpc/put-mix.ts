import type { Hono } from 'hono'
import { invalidRequest, XrpcError } from '../errors.ts'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { findFeed } from './util.ts'

const NSID = 'app.skysift.feed.putMix'

/** A problem inside an entry is a bad mix: the field is named as the mix checks name it (agents.1.weight). */
function invalidMix(message: string): XrpcError {
  const m = /^Input\/(agents\/\S*) (.*)$/.exec(message)
  return m ? new XrpcError(400, 'InvalidMix', `${m[1].replace(/\//g, '.')}: ${m[2]}`) : invalidRequest(message)
}

/** app.skysift.feed.putMix: checks and saves the subscriber's private mix for a feed. */
export function putMix(app: Hono, d: AppDeps): void {
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: 64, lexicons: d.lexicons, invalid: invalidMix } }), async (c) => {
    const { feed: feedUri, agents } = c.var.input as { feed: string; agents: unknown }
    const feed = findFeed(d, feedUri)
    const v = await d.feeds.putMix(feed, c.var.viewer, agents)
    return c.json({ feed: v.feed, agents: v.agents, fingerprint: v.fingerprint })
  })
}

import type { Hono } from 'hono'
import { INTERACTIONS_CHUNK, InvalidInteractionsError, readInteractions } from '../../feed/interactions-input.ts'
import { yieldToLoop } from '../../util/work-queue.ts'
import { invalidRequest } from '../errors.ts'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'

const NSID = 'app.bsky.feed.sendInteractions'

/** app.bsky.feed.sendInteractions: a reader's interactions with the posts of a feed, kept as feedback. */
export function sendInteractions(app: Hono, d: AppDeps): void {
  // the body is checked here, a chunk at a time, rather than by the middleware
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: 256 } }), async (c) => {
    const who = c.var.viewer
    let read: Awaited<ReturnType<typeof readInteractions>>
    try {
      read = await readInteractions(c.var.input)
    } catch (err) {
      if (err instanceof InvalidInteractionsError) throw invalidRequest(err.message)
      throw err
    }
    const { items, feed } = read
    let stored = 0
    // @NOTE stored a chunk at a time too, letting other requests in between
    for (let at = 0; at < items.length; at += INTERACTIONS_CHUNK) {
      if (at > 0) await yieldToLoop()
      stored += d.feeds.addFeedback(who, items.slice(at, at + INTERACTIONS_CHUNK), feed)
    }
    d.log.debug({ viewer: who, received: items.length, stored }, 'interactions')
    return c.json({})
  })
}

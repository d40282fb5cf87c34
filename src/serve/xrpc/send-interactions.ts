import type { Hono } from 'hono'
import { checkInteractionsInput, feedbackItemsOf, INTERACTIONS_CHUNK, InvalidInteractionsError } from '../../feed/interactions-input.ts'
import { yieldToLoop } from '../../util/work-queue.ts'
import { invalidRequest } from '../errors.ts'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'

const NSID = 'app.bsky.feed.sendInteractions'

/** The body limit of sendInteractions (on any node that takes it). */
export const INTERACTIONS_MAX_KIB = 256

/** A sendInteractions body checked against the lexicon, a chunk at a time; its interactions, or an InvalidRequest naming the first bad one. */
export async function checkInteractions(input: unknown): Promise<unknown[]> {
  try {
    return await checkInteractionsInput(input)
  } catch (err) {
    if (err instanceof InvalidInteractionsError) throw invalidRequest(err.message)
    throw err
  }
}

/** app.bsky.feed.sendInteractions: a reader's interactions with the posts of a feed, kept as feedback. */
export function sendInteractions(app: Hono, d: AppDeps): void {
  // the body is checked here, a chunk at a time, rather than by the middleware
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: INTERACTIONS_MAX_KIB } }), async (c) => {
    const who = c.var.viewer
    const input = c.var.input
    const items = feedbackItemsOf(await checkInteractions(input))
    const feed = (input as { feed?: string }).feed
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

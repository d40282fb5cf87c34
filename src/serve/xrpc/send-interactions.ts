import { lexicons as bskyLexicons } from '@atproto/api'
import type { Hono } from 'hono'
import { parseAtUri } from '../../util/at-ids.ts'
import { storedEvent } from '../../rank/feedback.ts'
import { yieldToLoop } from '../../util/work-queue.ts'
import { invalidRequest } from '../errors.ts'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'

const NSID = 'app.bsky.feed.sendInteractions'

/** interactions of one sendInteractions request checked or stored between two turns of the event loop */
const INTERACTIONS_CHUNK = 50

/**
 * A sendInteractions body checked against the lexicon, a chunk at a time; its interactions, or an InvalidRequest
 * naming the first bad one. (Edge nodes check a body with this before passing it on.)
 */
export async function checkInteractions(input: unknown): Promise<unknown[]> {
  // @NOTE a large batch is checked a chunk at a time, letting other requests in between: a page of 1,000
  // interactions otherwise holds the event loop for as long as it takes to check them all
  const all = (input as { interactions?: unknown }).interactions
  const list = Array.isArray(all) ? all : []
  for (let at = 0; at === 0 || at < list.length; at += INTERACTIONS_CHUNK) {
    if (at > 0) await yieldToLoop()
    try {
      bskyLexicons.assertValidXrpcInput(
        NSID,
        at === 0 && !Array.isArray(all) ? input : { ...(input as object), interactions: list.slice(at, at + INTERACTIONS_CHUNK) },
      )
    } catch (err) {
      throw invalidRequest((err as Error).message.replace(/^Input\/interactions\/(\d+)/, (_, i: string) => `Input/interactions/${at + Number(i)}`))
    }
  }
  return list
}

/** The body limit of sendInteractions, on the primary and on edge nodes. */
export const INTERACTIONS_MAX_KIB = 256

/** app.bsky.feed.sendInteractions: a reader's interactions with the posts of a feed, kept as feedback. */
export function sendInteractions(app: Hono, d: AppDeps): void {
  // the body is checked here, a chunk at a time, rather than by the middleware
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: INTERACTIONS_MAX_KIB } }), async (c) => {
    const who = c.var.viewer
    const input = c.var.input
    // @NOTE stored a chunk at a time too (see checkInteractions)
    const list = await checkInteractions(input)
    const body = input as { feed?: string }
    const items = (list as { item?: string; event?: string; feedContext?: string; reqId?: string }[]).flatMap((i) => {
      if (!i.event || !i.item || !parseAtUri(i.item)) return []
      return [{ postUri: i.item, event: storedEvent(i.event), feedContext: i.feedContext ?? null, reqId: i.reqId ?? null }]
    })
    let stored = 0
    for (let at = 0; at < items.length; at += INTERACTIONS_CHUNK) {
      if (at > 0) await yieldToLoop()
      stored += d.feeds.addFeedback(who, items.slice(at, at + INTERACTIONS_CHUNK), body.feed)
    }
    d.log.debug({ viewer: who, received: items.length, stored }, 'interactions')
    return c.json({})
  })
}

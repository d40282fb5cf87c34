import { lexicons as bskyLexicons } from '@atproto/api'
import { storedEvent, type FeedbackEvent } from '../rank/feedback.ts'
import { parseAtUri } from '../util/at-ids.ts'
import { yieldToLoop } from '../util/work-queue.ts'

const NSID = 'app.bsky.feed.sendInteractions'

/** Interactions of one sendInteractions body checked or stored between two turns of the event loop. */
export const INTERACTIONS_CHUNK = 50

/** An interaction as feedback is stored (see FeedService.addFeedback). */
export interface FeedbackItem {
  postUri: string
  event: FeedbackEvent
  feedContext: string | null
  reqId: string | null
}

/** A sendInteractions body the lexicon refuses; the message names the first bad field. */
export class InvalidInteractionsError extends Error {}

/**
 * A sendInteractions body (app.bsky.feed.sendInteractions input) checked
 * against the lexicon; its interactions. Throws InvalidInteractionsError
 * naming the first bad one.
 *
 * @NOTE a large batch is checked a chunk at a time, letting other work in between: a body of 1,000 interactions
 * otherwise holds the event loop for as long as it takes to check them all
 */
export async function checkInteractionsInput(input: unknown): Promise<unknown[]> {
  const all = (input as { interactions?: unknown } | null)?.interactions
  const list = Array.isArray(all) ? all : []
  for (let at = 0; at === 0 || at < list.length; at += INTERACTIONS_CHUNK) {
    if (at > 0) await yieldToLoop()
    try {
      bskyLexicons.assertValidXrpcInput(
        NSID,
        at === 0 && !Array.isArray(all) ? input : { ...(input as object), interactions: list.slice(at, at + INTERACTIONS_CHUNK) },
      )
    } catch (err) {
      throw new InvalidInteractionsError(
        (err as Error).message.replace(/^Input\/interactions\/(\d+)/, (_, i: string) => `Input/interactions/${at + Number(i)}`),
      )
    }
  }
  return list
}

/** Checked interactions (see checkInteractionsInput) as feedback items; ones without an event or a post's at-uri are left out. */
export function feedbackItemsOf(list: unknown[]): FeedbackItem[] {
  return (list as { item?: string; event?: string; feedContext?: string; reqId?: string }[]).flatMap((i): FeedbackItem[] => {
    if (!i.event || !i.item || !parseAtUri(i.item)) return []
    return [{ postUri: i.item, event: storedEvent(i.event), feedContext: i.feedContext ?? null, reqId: i.reqId ?? null }]
  })
}

/**
 * A sendInteractions body checked (checkInteractionsInput) and read into
 * feedback items, with the feed it names: what a serving node accepted over
 * HTTP and what reaches the primary through Redis are read the same way.
 */
export async function readInteractions(input: unknown): Promise<{ items: FeedbackItem[]; feed: string | undefined }> {
  const list = await checkInteractionsInput(input)
  return { items: feedbackItemsOf(list), feed: (input as { feed?: string }).feed }
}

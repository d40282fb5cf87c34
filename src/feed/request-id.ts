/*
 * getFeedSkeleton request ids that name their feed. An app may send feedback
 * naming only the request id a page came with, and with more than one serving
 * process (SKYSIFT_SERVE_PROCESSES) the feedback may reach another process
 * than the one that served the page: the id itself tells the feed, so no
 * process has to have seen the request.
 *
 * An id is 16 hex digits: digits 7–8 are the feed's place in the feeds file
 * (every serving process reads the same file), `ff` when past 254.
 */

const NO_FEED = 0xff

/** `id` (16 hex digits) with the feed's place in the feeds file in digits 7–8. */
export function requestIdFor(id: string, feedIndex: number): string {
  const i = feedIndex >= 0 && feedIndex < NO_FEED ? feedIndex : NO_FEED
  return `${id.slice(0, 6)}${i.toString(16).padStart(2, '0')}${id.slice(8)}`
}

/** The place in the feeds file a request id names, or undefined when it names none (or is not one of ours). */
export function feedIndexOf(reqId: string): number | undefined {
  if (!/^[0-9a-f]{16}$/.test(reqId)) return undefined
  const i = parseInt(reqId.slice(6, 8), 16)
  return i === NO_FEED ? undefined : i
}

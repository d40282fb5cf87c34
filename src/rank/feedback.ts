import { decodeFeedContext } from './feed-context.ts'
import { WEIGHT_MAX, WEIGHT_MIN, type MixEntry } from './mix.ts'

/**
 * Feedback from the interactions a Bluesky app reports ("show more" / "show
 * less", seen, clicks, likes, reposts, replies, quotes, shares): pure
 * functions that turn a reader's interactions into (1) nudges to the weights
 * of the agents that lifted an item, decaying over time and bounded, and (2)
 * a personal overlay on a shared list: items asked for come first, authors
 * the reader opened are lifted, items waved off disappear, items already
 * seen or acted on sink below the unseen ones.
 */

/** The interactions Skysift acts on, by the short names it stores (see FEEDBACK_EVENTS below). */
export type KnownFeedbackEvent = 'more' | 'less' | 'seen' | 'click' | 'author' | 'reposter' | 'embed' | 'like' | 'repost' | 'reply' | 'quote' | 'share'

/** A stored interaction's event: a known one, or an event this version does not know (kept, and ignored). */
export type FeedbackEvent = KnownFeedbackEvent | (string & {})

/** The app.bsky.feed.defs interaction events, and the short names Skysift stores them as (see EVENT_STRENGTH for what each does). */
export const FEEDBACK_EVENTS: Readonly<Record<string, KnownFeedbackEvent>> = {
  'app.bsky.feed.defs#requestMore': 'more',
  'app.bsky.feed.defs#requestLess': 'less',
  'app.bsky.feed.defs#clickthroughItem': 'click',
  'app.bsky.feed.defs#clickthroughAuthor': 'author',
  'app.bsky.feed.defs#clickthroughReposter': 'reposter',
  'app.bsky.feed.defs#clickthroughEmbed': 'embed',
  'app.bsky.feed.defs#interactionSeen': 'seen',
  'app.bsky.feed.defs#interactionLike': 'like',
  'app.bsky.feed.defs#interactionRepost': 'repost',
  'app.bsky.feed.defs#interactionReply': 'reply',
  'app.bsky.feed.defs#interactionQuote': 'quote',
  'app.bsky.feed.defs#interactionShare': 'share',
}

/** The longest event name kept for an event this version does not know. */
const MAX_UNKNOWN_EVENT = 100

/**
 * The name an interaction event is stored under: the short name of a known
 * one, else the event as sent (cut to a bounded length): an app may send
 * events newer than this server, which are kept and ignored, never refused.
 */
export function storedEvent(event: string): FeedbackEvent {
  return Object.hasOwn(FEEDBACK_EVENTS, event) ? FEEDBACK_EVENTS[event] : event.slice(0, MAX_UNKNOWN_EVENT)
}

/**
 * How much one interaction moves each agent that lifted the item: an explicit
 * "show more"/"show less" the most, acting on a post (like, repost, reply,
 * quote, share) about half as much, opening it (the post, its embed, its
 * author or reposter) a little. Seeing a post moves nothing.
 */
export const EVENT_STRENGTH: Readonly<Record<KnownFeedbackEvent, number>> = {
  more: 5,
  less: -5,
  like: 3,
  repost: 3,
  quote: 2,
  reply: 2,
  share: 2,
  click: 1,
  embed: 1,
  author: 1,
  reposter: 1,
  seen: 0,
}

/** How a reader's feedback is named to them. */
export const EVENT_LABELS: Readonly<Record<KnownFeedbackEvent, string>> = {
  more: 'Show more',
  less: 'Show less',
  click: 'Opened the post',
  author: 'Opened the author',
  reposter: 'Opened who reposted it',
  embed: 'Opened its link or media',
  seen: 'Seen',
  like: 'Liked',
  repost: 'Reposted',
  reply: 'Replied',
  quote: 'Quoted',
  share: 'Shared',
}

/** The label of an event; an event this version does not know is shown as sent. */
export const eventLabel = (event: FeedbackEvent): string => (Object.hasOwn(EVENT_LABELS, event) ? EVENT_LABELS[event as KnownFeedbackEvent] : event)

/** The strength of an event; 0 for events this version does not know. */
export const strengthOf = (event: FeedbackEvent): number => (Object.hasOwn(EVENT_STRENGTH, event) ? EVENT_STRENGTH[event as KnownFeedbackEvent] : 0)

export interface Interaction {
  id: number
  event: FeedbackEvent
  postUri: string
  feedContext: string | null
  at: number
}

/** How much one "more"/"less" moves each agent that lifted the item. */
export const NUDGE_STEP = EVENT_STRENGTH.more
/** Nudges halve after this long. */
export const NUDGE_HALF_LIFE_MS = 3 * 86_400_000
/** The most all nudges together may move one agent's weight. */
export const NUDGE_LIMIT = 40
/** "Show more" pins an item to the top of the reader's first page for this long. */
export const PIN_MS = 24 * 3_600_000
/** Opening an author's profile from the feed lifts that author's next unseen post for this long. */
export const AUTHOR_LIFT_MS = 7 * 86_400_000

export interface Nudge {
  /** the attribution label of the agent (agent id, #n for a repeated one) */
  label: string
  delta: number
}

/** The nudges one interaction makes: every agent that lifted the item moves by the event's strength. */
export function nudgesOf(i: Pick<Interaction, 'event' | 'feedContext'>): Nudge[] {
  const delta = strengthOf(i.event)
  if (delta === 0 || !i.feedContext) return []
  const a = decodeFeedContext(i.feedContext)
  if (!a) return []
  return a.contributions.filter((c) => c.value > 0).map((c) => ({ label: c.label, delta }))
}

/**
 * The reader's entries with decayed nudges applied: each weight moves by
 * the sum of its nudges (each halving every half-life), at most
 * ±NUDGE_LIMIT, and stays within −100…100 and an integer.
 */
export function applyNudges(
  entries: MixEntry[],
  labels: Map<string, number>,
  interactions: Interaction[],
  now: number,
): { entries: MixEntry[]; deltas: number[] } {
  const deltas = new Array<number>(entries.length).fill(0)
  for (const i of interactions) {
    const decay = 0.5 ** (Math.max(0, now - i.at) / NUDGE_HALF_LIFE_MS)
    for (const n of nudgesOf(i)) {
      const idx = labels.get(n.label)
      if (idx !== undefined) deltas[idx] += n.delta * decay
    }
  }
  const rounded = deltas.map((d) => Math.round(Math.max(-NUDGE_LIMIT, Math.min(NUDGE_LIMIT, d))))
  return {
    entries: entries.map((e, k) => (rounded[k] ? { ...e, weight: Math.max(WEIGHT_MIN, Math.min(WEIGHT_MAX, e.weight + rounded[k])) } : e)),
    deltas: rounded,
  }
}

export interface OverlayState {
  /** newest first */
  pinned: string[]
  hidden: Set<string>
  seen: Set<string>
  /** authors (DIDs) the reader opened from the feed, most recent first */
  lifted: string[]
}

/** The author of a post, from its at-uri. */
const authorOf = (uri: string): string => uri.slice(5, uri.indexOf('/', 5) >>> 0)

/** What a reader's interactions mean for their list right now. */
export function overlayState(interactions: Interaction[], now: number): OverlayState {
  const hidden = new Set<string>()
  const seen = new Set<string>()
  const pinnedAt = new Map<string, number>()
  const liftedAt = new Map<string, number>()
  for (const i of [...interactions].sort((a, b) => a.at - b.at || a.id - b.id)) {
    if (i.event === 'less') {
      hidden.add(i.postUri)
      pinnedAt.delete(i.postUri)
    } else if (i.event === 'more') {
      hidden.delete(i.postUri)
      if (now - i.at < PIN_MS) pinnedAt.set(i.postUri, i.at)
    } else if (strengthOf(i.event) > 0 || i.event === 'seen') {
      // @NOTE acting on a post means the reader has seen it; events this version does not know change nothing
      seen.add(i.postUri)
      if (i.event === 'author' && now - i.at < AUTHOR_LIFT_MS) liftedAt.set(authorOf(i.postUri), i.at)
    }
  }
  const newestFirst = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k]) => k)
  return { pinned: newestFirst(pinnedAt), hidden, seen, lifted: newestFirst(liftedAt) }
}

/**
 * The reader's order over a shared list: pinned items first (taken from the
 * list, or made by `pinnedItem` when the list no longer has them; null when
 * the post is gone), then the first unseen item of each lifted author (most
 * recently opened first), then the other unseen items in list order, then
 * seen ones; hidden items are left out.
 */
export function overlay<T extends { uri: string }>(shared: T[], s: OverlayState, pinnedItem: (uri: string) => T | null): T[] {
  const byUri = new Map(shared.map((it) => [it.uri, it]))
  const out: T[] = []
  const taken = new Set<string>()
  for (const uri of s.pinned) {
    if (s.hidden.has(uri) || taken.has(uri)) continue
    const it = byUri.get(uri) ?? pinnedItem(uri)
    if (!it) continue
    out.push(it)
    taken.add(uri)
  }
  if (s.lifted.length) {
    const firstBy = new Map<string, T>()
    for (const it of shared) {
      const a = authorOf(it.uri)
      if (!firstBy.has(a) && !taken.has(it.uri) && !s.hidden.has(it.uri) && !s.seen.has(it.uri)) firstBy.set(a, it)
    }
    for (const a of s.lifted) {
      const it = firstBy.get(a)
      if (!it) continue
      out.push(it)
      taken.add(it.uri)
    }
  }
  const later: T[] = []
  for (const it of shared) {
    if (taken.has(it.uri) || s.hidden.has(it.uri)) continue
    if (s.seen.has(it.uri)) later.push(it)
    else out.push(it)
  }
  return out.concat(later)
}

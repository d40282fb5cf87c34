import { decodeFeedContext } from './feed-context.ts'
import { WEIGHT_MAX, WEIGHT_MIN, type MixEntry } from './mix.ts'

/**
 * Feedback from "show more" / "show less" and "seen": pure functions that
 * turn a reader's interactions into (1) nudges to the weights of the agents
 * that lifted an item, decaying over time and bounded, and (2) a personal
 * overlay on a shared list: items asked for come first, items waved off
 * disappear, items already seen sink below the unseen ones.
 */

export type FeedbackEvent = 'more' | 'less' | 'seen'

export interface Interaction {
  id: number
  event: FeedbackEvent
  postUri: string
  feedContext: string | null
  at: number
}

/** How much one "more"/"less" moves each agent that lifted the item. */
export const NUDGE_STEP = 5
/** Nudges halve after this long. */
export const NUDGE_HALF_LIFE_MS = 3 * 86_400_000
/** The most all nudges together may move one agent's weight. */
export const NUDGE_LIMIT = 40
/** "Show more" pins an item to the top of the reader's first page for this long. */
export const PIN_MS = 24 * 3_600_000

export interface Nudge {
  /** the attribution label of the agent (agent id, #n for a repeated one) */
  label: string
  delta: number
}

/** The nudges one interaction makes: every agent that lifted the item moves by ±step. */
export function nudgesOf(i: Pick<Interaction, 'event' | 'feedContext'>): Nudge[] {
  if (i.event === 'seen' || !i.feedContext) return []
  const a = decodeFeedContext(i.feedContext)
  if (!a) return []
  const sign = i.event === 'more' ? 1 : -1
  return a.contributions.filter((c) => c.value > 0).map((c) => ({ label: c.label, delta: sign * NUDGE_STEP }))
}

/** Labels of a mix's own entries, numbered as attributions number them. */
export function entryLabels(entries: MixEntry[], labelFor: (index: number) => string): Map<string, number> {
  const out = new Map<string, number>()
  entries.forEach((_, i) => out.set(labelFor(i), i))
  return out
}

/**
 * The reader's entries with decayed nudges applied: each weight moves by
 * the sum of its nudges (each halving every half-life), at most
 * ±NUDGE_LIMIT, and stays within −100…100 and an integer.
 */
export function applyNudges(entries: MixEntry[], labels: Map<string, number>, interactions: Interaction[], now: number): { entries: MixEntry[]; deltas: number[] } {
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
}

/** What a reader's interactions mean for their list right now. */
export function overlayState(interactions: Interaction[], now: number): OverlayState {
  const hidden = new Set<string>()
  const seen = new Set<string>()
  const pinnedAt = new Map<string, number>()
  for (const i of [...interactions].sort((a, b) => a.at - b.at || a.id - b.id)) {
    if (i.event === 'less') {
      hidden.add(i.postUri)
      pinnedAt.delete(i.postUri)
    } else if (i.event === 'more') {
      hidden.delete(i.postUri)
      if (now - i.at < PIN_MS) pinnedAt.set(i.postUri, i.at)
    } else seen.add(i.postUri)
  }
  const pinned = [...pinnedAt].sort((a, b) => b[1] - a[1]).map(([uri]) => uri)
  return { pinned, hidden, seen }
}

/**
 * The reader's order over a shared list: pinned items first (taken from the
 * list, or made by `pinnedItem` when the list no longer has them; null when
 * the post is gone), then unseen items in list order, then seen ones; hidden
 * items are left out.
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
  const later: T[] = []
  for (const it of shared) {
    if (taken.has(it.uri) || s.hidden.has(it.uri)) continue
    if (s.seen.has(it.uri)) later.push(it)
    else out.push(it)
  }
  return out.concat(later)
}

import { describe, expect, it } from 'vitest'
import {
  applyNudges,
  AUTHOR_LIFT_MS,
  EVENT_STRENGTH,
  eventLabel,
  NUDGE_HALF_LIFE_MS,
  NUDGE_LIMIT,
  NUDGE_STEP,
  nudgesOf,
  overlay,
  overlayState,
  PIN_MS,
  type Interaction,
} from './feedback.ts'

const DAY = 86_400_000
let id = 0
const act = (event: Interaction['event'], postUri: string, at: number, feedContext: string | null = null): Interaction => ({
  id: ++id,
  event,
  postUri,
  feedContext,
  at,
})

describe('nudges', () => {
  const ctx = 'v1|ab|keyword:+60,recency:+20,calm:-5|science'

  it('move every agent that lifted the item, by one step, up for more and down for less', () => {
    expect(nudgesOf({ event: 'more', feedContext: ctx })).toEqual([
      { label: 'keyword', delta: NUDGE_STEP },
      { label: 'recency', delta: NUDGE_STEP },
    ])
    expect(nudgesOf({ event: 'less', feedContext: ctx })).toEqual([
      { label: 'keyword', delta: -NUDGE_STEP },
      { label: 'recency', delta: -NUDGE_STEP },
    ])
    expect(nudgesOf({ event: 'seen', feedContext: ctx })).toEqual([])
    expect(nudgesOf({ event: 'more', feedContext: 'garbage' })).toEqual([])
  })

  it('move agents less for acting on a post than for asking, less again for opening it, and not at all for seeing it or for unknown events', () => {
    const up = (event: string) => nudgesOf({ event, feedContext: ctx }).map((n) => n.delta)
    expect(up('like')).toEqual([3, 3])
    expect(up('repost')).toEqual([3, 3])
    expect(up('reply')).toEqual([2, 2])
    expect(up('click')).toEqual([1, 1])
    expect(up('author')).toEqual([1, 1])
    expect(up('seen')).toEqual([])
    expect(up('app.bsky.feed.defs#interactionFutureThing')).toEqual([])
    // every positive signal is weaker than an explicit "show more"
    for (const [event, strength] of Object.entries(EVENT_STRENGTH)) if (event !== 'more') expect(strength, event).toBeLessThan(NUDGE_STEP)
    expect(eventLabel('like')).toBe('Liked')
    expect(eventLabel('app.bsky.feed.defs#interactionFutureThing')).toBe('app.bsky.feed.defs#interactionFutureThing')
  })

  const entries = [
    { agent: 'keyword', weight: 60, options: { include: ['x'] } },
    { agent: 'recency', weight: 95 },
    { agent: 'calm', weight: 10 },
  ]
  const labels = new Map([
    ['keyword', 0],
    ['recency', 1],
    ['calm', 2],
  ])

  it("apply to the reader's weights, bounded by ±100 and by the nudge limit", () => {
    const now = 10 * DAY
    const many = Array.from({ length: 30 }, () => act('more', 'p', now, ctx))
    const { entries: out, deltas } = applyNudges(entries, labels, many, now)
    expect(deltas).toEqual([NUDGE_LIMIT, NUDGE_LIMIT, 0])
    expect(out.map((e) => e.weight)).toEqual([60 + NUDGE_LIMIT, 100, 10])
    expect(out[0].options).toEqual({ include: ['x'] })
  })

  it('decay: a nudge halves every half-life', () => {
    const now = 10 * DAY
    const fresh = applyNudges(entries, labels, [act('less', 'p', now, ctx), act('less', 'q', now, ctx)], now)
    const old = applyNudges(entries, labels, [act('less', 'p', now - NUDGE_HALF_LIFE_MS, ctx), act('less', 'q', now - NUDGE_HALF_LIFE_MS, ctx)], now)
    expect(fresh.deltas[0]).toBe(-2 * NUDGE_STEP)
    expect(old.deltas[0]).toBe(-NUDGE_STEP)
  })
})

describe('overlay', () => {
  const list = ['a', 'b', 'c', 'd', 'e'].map((uri) => ({ uri }))
  const now = 100 * DAY

  it('puts asked-for items first, drops waved-off ones, and sinks seen ones', () => {
    const s = overlayState([act('seen', 'a', now - 5), act('less', 'c', now - 4), act('more', 'e', now - 3), act('seen', 'b', now - 2)], now)
    expect(overlay(list, s, () => null).map((i) => i.uri)).toEqual(['e', 'd', 'a', 'b'])
  })

  it('brings back an asked-for item the shared list no longer holds, if it still exists', () => {
    const s = overlayState([act('more', 'z', now - 1), act('more', 'gone', now - 2)], now)
    expect(overlay(list, s, (uri) => (uri === 'z' ? { uri } : null)).map((i) => i.uri)).toEqual(['z', 'a', 'b', 'c', 'd', 'e'])
  })

  it('lifts the next unseen post of an author the reader opened, for a week, and sinks what the reader acted on', () => {
    const by = (who: string, n: number) => ({ uri: `at://did:plc:${who}/app.bsky.feed.post/${n}` })
    const feed = [by('ann', 1), by('bob', 2), by('cat', 3), by('bob', 4), by('dan', 5), by('cat', 6)]
    const uris = (s: ReturnType<typeof overlayState>) => overlay(feed, s, () => null).map((i) => i.uri)
    // opened bob from his first post: his next post rises; the one opened sinks with the seen ones
    const s = overlayState([act('author', feed[1].uri, now - 5), act('like', feed[0].uri, now - 4)], now)
    expect(uris(s)).toEqual([feed[3], feed[2], feed[4], feed[5], feed[0], feed[1]].map((i) => i.uri))
    // most recently opened author first
    expect(uris(overlayState([act('author', feed[1].uri, now - 5), act('author', feed[5].uri, now - 3)], now)).slice(0, 2)).toEqual([feed[2].uri, feed[3].uri])
    expect(overlayState([act('author', feed[1].uri, now - AUTHOR_LIFT_MS - 1)], now).lifted).toEqual([])
    // an event this version does not know changes nothing
    expect(uris(overlayState([act('app.bsky.feed.defs#interactionFutureThing', feed[0].uri, now - 1)], now))).toEqual(feed.map((i) => i.uri))
  })

  it('lets a later choice win and unpins after a day', () => {
    expect(overlayState([act('less', 'a', now - 10), act('more', 'a', now - 5)], now)).toMatchObject({ pinned: ['a'], hidden: new Set() })
    expect(overlayState([act('more', 'a', now - 10), act('less', 'a', now - 5)], now)).toMatchObject({ pinned: [], hidden: new Set(['a']) })
    expect(overlayState([act('more', 'a', now - PIN_MS - 1)], now).pinned).toEqual([])
  })
})

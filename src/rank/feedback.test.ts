import { describe, expect, it } from 'vitest'
import { applyNudges, NUDGE_HALF_LIFE_MS, NUDGE_LIMIT, NUDGE_STEP, nudgesOf, overlay, overlayState, PIN_MS, type Interaction } from './feedback.ts'

const DAY = 86_400_000
let id = 0
const act = (event: Interaction['event'], postUri: string, at: number, feedContext: string | null = null): Interaction => ({ id: ++id, event, postUri, feedContext, at })

describe('nudges', () => {
  const ctx = 'v1|ab|keyword:+60,recency:+20,calm:-5|science'

  it('move every agent that lifted the item, by one step, up for more and down for less', () => {
    expect(nudgesOf({ event: 'more', feedContext: ctx })).toEqual([{ label: 'keyword', delta: NUDGE_STEP }, { label: 'recency', delta: NUDGE_STEP }])
    expect(nudgesOf({ event: 'less', feedContext: ctx })).toEqual([{ label: 'keyword', delta: -NUDGE_STEP }, { label: 'recency', delta: -NUDGE_STEP }])
    expect(nudgesOf({ event: 'seen', feedContext: ctx })).toEqual([])
    expect(nudgesOf({ event: 'more', feedContext: 'garbage' })).toEqual([])
  })

  const entries = [{ agent: 'keyword', weight: 60, options: { include: ['x'] } }, { agent: 'recency', weight: 95 }, { agent: 'calm', weight: 10 }]
  const labels = new Map([['keyword', 0], ['recency', 1], ['calm', 2]])

  it('apply to the reader\'s weights, bounded by ±100 and by the nudge limit', () => {
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

  it('lets a later choice win and unpins after a day', () => {
    expect(overlayState([act('less', 'a', now - 10), act('more', 'a', now - 5)], now)).toMatchObject({ pinned: ['a'], hidden: new Set() })
    expect(overlayState([act('more', 'a', now - 10), act('less', 'a', now - 5)], now)).toMatchObject({ pinned: [], hidden: new Set(['a']) })
    expect(overlayState([act('more', 'a', now - PIN_MS - 1)], now).pinned).toEqual([])
  })
})

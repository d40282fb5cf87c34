import { describe, expect, it } from 'vitest'
import { DROP_CODE } from './rank.ts'
import { LIKES, TIME, cellOf, mergeNewest, newerFirst, survivors, type CachedPost, type CandidateList } from './columns.ts'

let seed = 7
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff

const post = (id: number, createdAt: number): CachedPost => ({
  id,
  post: {
    uri: `at://did:plc:x/app.bsky.feed.post/${id}`,
    author: 'did:plc:x',
    createdAt,
    text: '',
    langs: [],
    tags: [],
    labels: [],
    embed: null,
    quote: null,
    replyRoot: null,
    replyParent: null,
    likeCount: Math.floor(rnd() * 50),
    repostCount: 0,
  },
  // slot 0 scored for some posts, drop for others, not looked up for the rest
  scores: [rnd() < 0.3 ? undefined : rnd() < 0.2 ? null : rnd()],
  used: 0,
  lists: 1,
})

/** A list as ListBuilder keeps one: newest first, with columns aligned to it (some with no room to spare). */
function listOf(items: CachedPost[], slots: number[], roomy: boolean): CandidateList {
  const cols = new Map<number, Float64Array>()
  for (const slot of slots) {
    const col = new Float64Array(roomy ? items.length + 64 : items.length)
    items.forEach((c, i) => {
      col[i] = cellOf(c, slot)
    })
    cols.set(slot, col)
  }
  return { max: 1000, items, bit: 1, seq: 0, full: false, usedAt: 0, cols }
}

describe('mergeNewest', () => {
  it('merges new posts into a list as a sort of both would order them, columns in step, with and without room', () => {
    let id = 1
    for (let round = 0; round < 300; round++) {
      // creation times from a small range, so ties are common; new posts mostly newer, sometimes anywhere
      const span = 1 + Math.floor(rnd() * 40)
      const old = Array.from({ length: Math.floor(rnd() * 60) }, () => post(id++, Math.floor(rnd() * span))).sort(newerFirst)
      const shift = rnd() < 0.5 ? span : 0
      const added = Array.from({ length: Math.floor(rnd() * 30) }, () => post(id++, shift + Math.floor(rnd() * span))).sort(newerFirst)
      const slots = rnd() < 0.5 ? [TIME, LIKES, 0] : [LIKES, 0]
      const list = listOf(old.slice(), slots, rnd() < 0.5)
      mergeNewest(list, added)
      const expected = [...old, ...added].sort(newerFirst)
      expect(list.items.map((c) => c.id)).toEqual(expected.map((c) => c.id))
      for (const slot of slots) {
        expect(Array.from(list.cols.get(slot)!.subarray(0, expected.length))).toEqual(expected.map((c) => cellOf(c, slot)))
      }
    }
  })
})

describe('survivors', () => {
  it('keeps the positions no column drops, and says null when none is dropped', () => {
    const a = Float64Array.from([1, DROP_CODE, 0, Number.NaN, 2])
    const b = Float64Array.from([0, 1, 1, DROP_CODE, 1])
    expect(Array.from(survivors(5, [a, b])!)).toEqual([0, 2, 4])
    expect(survivors(5, [Float64Array.from([1, 2, Number.NaN, 0, -1])])).toBeNull()
    expect(survivors(5, [])).toBeNull()
    expect(Array.from(survivors(3, [Float64Array.from([DROP_CODE, DROP_CODE, DROP_CODE])])!)).toEqual([])
  })
})

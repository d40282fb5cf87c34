import { describe, expect, it } from 'vitest'
import { DROP } from '../score/sdk.ts'
import { encodeScores, kthLargest, rankCandidates } from './rank.ts'

const c = (uri: string, createdAt = 0) => ({ uri, createdAt })

describe('rankCandidates', () => {
  it('normalizes each agent so weights compare: a 0–1 agent and a 0–1000 agent weigh the same', () => {
    const cands = [c('a'), c('b'), c('c')]
    const small = { label: 'small', weight: 50, scores: [1, 0, 0.5] }
    const big = { label: 'big', weight: 50, scores: [0, 1000, 500] }
    const out = rankCandidates(cands, [small, big], 10)
    // a: 50+0, b: 0+50, c: 25+25 — all equal, so ties fall back to URI order deterministically
    expect(out.map((i) => i.score)).toEqual([50, 50, 50])
    const heavier = rankCandidates(cands, [{ ...small, weight: 60 }, big], 10)
    expect(heavier[0].uri).toBe('a')
    expect(heavier[2].uri).toBe('b')
  })

  it('removes a post any agent drops, whatever the others say', () => {
    const out = rankCandidates(
      [c('a'), c('b')],
      [
        { label: 'x', weight: 100, scores: [10, 1] },
        { label: 'filter', weight: 0, scores: [DROP, 1] },
      ],
      10,
    )
    expect(out.map((i) => i.uri)).toEqual(['b'])
  })

  it('lets a negative weight push down what an agent lifts', () => {
    const out = rankCandidates([c('cats'), c('dogs')], [{ label: 'keyword', weight: -80, scores: [1, 0] }], 10)
    expect(out.map((i) => i.uri)).toEqual(['dogs', 'cats'])
    expect(out[1].contributions).toEqual([{ label: 'keyword', value: -80 }])
  })

  it('counts null (no opinion) as zero and breaks ties by newest first', () => {
    const out = rankCandidates([c('old', 1), c('new', 2), c('mid', 1.5)], [{ label: 'x', weight: 10, scores: [null, null, null] }], 10)
    expect(out.map((i) => i.uri)).toEqual(['new', 'mid', 'old'])
  })

  it('keeps at most `limit` items and reports every agent contribution', () => {
    const cands = Array.from({ length: 20 }, (_, i) => c(`p${i}`, i))
    const out = rankCandidates(cands, [{ label: 'r', weight: 100, scores: cands.map((_, i) => i) }], 5)
    expect(out.map((i) => i.uri)).toEqual(['p19', 'p18', 'p17', 'p16', 'p15'])
    expect(out[0].contributions[0]).toEqual({ label: 'r', value: 100 })
  })

  it('ranks encoded columns exactly as the scores agents answer', () => {
    let seed = 3
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
    const cands = Array.from({ length: 3000 }, (_, i) => c(`p${i}`, Math.floor(rnd() * 100)))
    const pick = (): number | null | typeof DROP => {
      const r = rnd()
      return r < 0.05 ? DROP : r < 0.15 ? null : Math.round(rnd() * 20) / 4
    }
    const columns = [40, -15, 25].map((weight, j) => ({ label: `a${j}`, weight, scores: cands.map(pick) }))
    const plain = rankCandidates(cands, columns, 100)
    const encoded = rankCandidates(
      cands,
      columns.map((col) => ({ ...col, scores: encodeScores(col.scores) })),
      100,
    )
    expect(encoded).toEqual(plain)
    expect(plain).toHaveLength(100)
    // the attributions add up to the total
    for (const it of plain) expect(it.contributions.reduce((s, x) => s + x.value, 0)).toBeCloseTo(it.score, 9)
  })

  it('selects the k-th largest value as a full sort would, duplicates included', () => {
    let seed = 11
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
    for (const [len, distinct] of [
      [1, 1],
      [2, 2],
      [10, 3],
      [1000, 7],
      [5000, 100000],
      [4096, 1],
    ]) {
      const values = Float64Array.from({ length: len }, () => Math.floor(rnd() * distinct) - distinct / 2)
      const sorted = [...values].sort((a, b) => b - a)
      for (const k of [1, 2, Math.ceil(len / 3), len].filter((k) => k >= 1 && k <= len)) {
        expect(kthLargest(Float64Array.from(values), k)).toBe(sorted[k - 1])
      }
    }
  })
})

import { describe, expect, it } from 'vitest'
import { DROP } from '../score/sdk.ts'
import { rankCandidates } from './rank.ts'

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
    const out = rankCandidates([c('a'), c('b')], [
      { label: 'x', weight: 100, scores: [10, 1] },
      { label: 'filter', weight: 0, scores: [DROP, 1] },
    ], 10)
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
})

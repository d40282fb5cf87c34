import { describe, expect, it } from 'vitest'
import { MAX_INTERESTS } from '../rank/interests.ts'
import { interestsOf } from './interests.ts'

describe('interests forwarded by the app', () => {
  const headers = (h: Record<string, string>) => (name: string) => h[name]

  it('reads the newer header first, keeps known topics in vocabulary order, and at most a few', () => {
    expect(interestsOf(headers({ 'x-bsky-topics': 'Science, pets' }))).toEqual(['pets', 'science'])
    expect(interestsOf(headers({ 'x-bsky-topics': 'science', 'x-atproto-bsky-topics': 'art' }))).toEqual(['art'])
    expect(interestsOf(headers({ 'x-bsky-topics': 'astrology,,' }))).toEqual([])
    expect(interestsOf(headers({}))).toEqual([])
    expect(interestsOf(headers({ 'x-bsky-topics': 'tv,tech,sports,science,politics,pets,news' }))).toHaveLength(MAX_INTERESTS)
  })
})

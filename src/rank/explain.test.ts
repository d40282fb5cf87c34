import { describe, expect, it } from 'vitest'
import { detailFor, explain } from './explain.ts'

describe('explain', () => {
  const describe_ = (label: string) =>
    ({
      keyword: { agent: 'keyword', title: 'Keywords', options: { include: ['cats', 'kittens'] } },
      recency: { agent: 'recency', title: 'Recency' },
      calm: { agent: 'calm', title: 'Calm' },
    })[label] ?? null

  it('says which agents lifted the item and which held it back', () => {
    const e = explain(
      {
        fingerprint: 'ab',
        contributions: [
          { label: 'recency', value: 21 },
          { label: 'keyword', value: 62 },
          { label: 'calm', value: -5 },
        ],
      },
      describe_,
    )
    expect(e.text).toBe('Shown because: Keywords “cats”, “kittens” (+62), Recency (+21); held back by: Calm (−5).')
    expect(e.reasons.map((r) => r.agent)).toEqual(['recency', 'keyword', 'calm'])
  })

  it('explains an item no agent moved, and agents this server no longer knows', () => {
    expect(explain({ fingerprint: 'ab', contributions: [] }, describe_).text).toMatch(/no agent moved it/)
    expect(explain({ fingerprint: 'ab', contributions: [{ label: 'gone#2', value: 7 }] }, () => null).text).toBe('Shown because: gone (+7).')
  })

  it('describes what common agents look for', () => {
    expect(detailFor('keyword', { include: ['a', 'b', 'c', 'd', 'e'] })).toBe('“a”, “b”, “c” and 2 more')
    expect(detailFor('hashtags', { include: ['#space', 'nasa'] })).toBe('“#space”, “#nasa”')
    expect(detailFor('language', { langs: ['en', 'de'] })).toBe('en, de')
    expect(detailFor('topics', { topics: ['science', 'pets'] })).toBe('about science, pets')
    expect(detailFor('engagement', {})).toBeNull()
  })
})

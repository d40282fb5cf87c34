import { describe, expect, it } from 'vitest'
import { COLD_START_WEIGHT, withInterests } from './interests.ts'

describe('interests forwarded by the app', () => {
  it('gives a reader without a mix the default plus the interests, and fills a topics entry left empty', () => {
    const defaults = [{ agent: 'recency', weight: 70 }]
    expect(withInterests(defaults, ['pets'], false)).toEqual([...defaults, { agent: 'topics', weight: COLD_START_WEIGHT, options: { topics: ['pets'] } }])
    const own = [
      { agent: 'topics', weight: 40, options: { requireMatch: true } },
      { agent: 'recency', weight: 10 },
    ]
    expect(withInterests(own, ['art', 'pets'], true)).toEqual([
      { agent: 'topics', weight: 40, options: { requireMatch: true, topics: ['art', 'pets'] } },
      own[1],
    ])
  })

  it("leaves a reader's own choices alone", () => {
    const own = [{ agent: 'recency', weight: 10 }]
    expect(withInterests(own, ['pets'], true)).toBe(own)
    const chosen = [{ agent: 'topics', weight: 40, options: { topics: ['science'] } }]
    expect(withInterests(chosen, ['pets'], true)).toBe(chosen)
    expect(withInterests(own, [], false)).toBe(own)
  })
})

import { describe, expect, it } from 'vitest'
import { RateBudget } from './rate-budget.ts'

describe('RateBudget', () => {
  it('allows perKey attempts per key and total in all within the window, then again as attempts age out', () => {
    const b = new RateBudget({ perKey: 2, total: 3, windowMs: 60_000 })
    expect(b.take('a', 0)).toBeNull()
    expect(b.take('a', 1000)).toBeNull()
    expect(b.take('a', 2000)).toEqual({ retryAfterS: 58, scope: 'key' })
    expect(b.take('b', 3000)).toBeNull()
    // the overall budget is spent: a third author is refused too
    expect(b.take('c', 4000)).toEqual({ retryAfterS: 56, scope: 'total' })
    expect(b.size).toBe(3)
    // a's first attempt ages out: one more for a
    expect(b.take('a', 60_000)).toBeNull()
    expect(b.take('a', 60_001)).toMatchObject({ scope: 'key' })
  })

  it('remembers no more attempts than the overall budget however many keys try', () => {
    const b = new RateBudget({ perKey: 1, total: 10, windowMs: 1000 })
    let allowed = 0
    for (let i = 0; i < 10_000; i++) if (b.take(`k${i}`, i) === null) allowed++
    expect(b.size).toBeLessThanOrEqual(10)
    // 10 per second over 10 s
    expect(allowed).toBe(100)
  })
})

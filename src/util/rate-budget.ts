/**
 * Attempts per key and in all within a sliding window: `take(key)` counts an
 * attempt when both budgets have room. Memory is bounded by the overall
 * budget: only attempts inside the window are remembered.
 */
export class RateBudget {
  private readonly perKey: number
  private readonly total: number
  private readonly windowMs: number
  /** attempts inside the window, oldest first */
  private readonly recent: { at: number; key: string }[] = []
  private readonly byKey = new Map<string, number>()

  constructor(opts: { perKey: number; total: number; windowMs: number }) {
    this.perKey = opts.perKey
    this.total = opts.total
    this.windowMs = opts.windowMs
  }

  /**
   * Counts an attempt for `key` and returns null, or returns how many
   * seconds until one would be allowed (nothing counted) and which budget is spent.
   */
  take(key: string, now = Date.now()): { retryAfterS: number; scope: 'key' | 'total' } | null {
    this.expire(now)
    const mine = this.byKey.get(key) ?? 0
    if (mine >= this.perKey) {
      const oldest = this.recent.find((a) => a.key === key)!
      return { retryAfterS: this.secondsUntil(oldest.at, now), scope: 'key' }
    }
    if (this.recent.length >= this.total) return { retryAfterS: this.secondsUntil(this.recent[0].at, now), scope: 'total' }
    this.recent.push({ at: now, key })
    this.byKey.set(key, mine + 1)
    return null
  }

  /** Attempts remembered now (at most the overall budget). */
  get size(): number {
    return this.recent.length
  }

  private secondsUntil(at: number, now: number): number {
    return Math.max(1, Math.ceil((at + this.windowMs - now) / 1000))
  }

  private expire(now: number): void {
    while (this.recent.length && now - this.recent[0].at >= this.windowMs) {
      const { key } = this.recent.shift()!
      const n = (this.byKey.get(key) ?? 1) - 1
      if (n > 0) this.byKey.set(key, n)
      else this.byKey.delete(key)
    }
  }
}

/** Figures only the serving process sees: cache outcomes and getFeedSkeleton timings. */

export type CacheOutcome = 'fresh' | 'stale' | 'miss'

/** The newest `size` values, for percentiles without unbounded memory. */
export class Reservoir {
  private readonly buf: Float64Array
  private n = 0
  private next = 0

  constructor(size = 2048) {
    this.buf = new Float64Array(size)
  }

  add(v: number): void {
    this.buf[this.next] = v
    this.next = (this.next + 1) % this.buf.length
    if (this.n < this.buf.length) this.n++
  }

  values(): number[] {
    return Array.from(this.buf.subarray(0, this.n))
  }
}

/** The q-quantile (0…1) of unsorted values, nearest rank; null when empty. */
export function quantile(values: number[], q: number): number | null {
  if (!values.length) return null
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export interface ServeReport {
  cache: { fresh: number; stale: number; misses: number }
  skeleton: { count: number; recentMs: number[] }
}

export class ServeStats {
  readonly cache = { fresh: 0, stale: 0, misses: 0 }
  skeletonCount = 0
  private readonly skeletonMs = new Reservoir(2048)

  lookup(outcome: CacheOutcome): void {
    if (outcome === 'fresh') this.cache.fresh++
    else if (outcome === 'stale') this.cache.stale++
    else this.cache.misses++
  }

  skeleton(ms: number): void {
    this.skeletonCount++
    this.skeletonMs.add(ms)
  }

  report(maxSamples = 512): ServeReport {
    const all = this.skeletonMs.values()
    // a thinned copy keeps the report small while keeping the distribution
    const step = Math.max(1, Math.ceil(all.length / maxSamples))
    const recentMs = step === 1 ? all : all.filter((_, i) => i % step === 0)
    return { cache: { ...this.cache }, skeleton: { count: this.skeletonCount, recentMs: recentMs.map((v) => Math.round(v * 1000) / 1000) } }
  }
}

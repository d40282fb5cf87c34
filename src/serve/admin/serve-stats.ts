import type { ServeReport } from '../../status/report.ts'
import { Reservoir } from '../../util/quantile.ts'

/** Whether a first page came from a fresh, stale or missing list. */
export type CacheOutcome = 'fresh' | 'stale' | 'miss'

/** Figures only the serving process sees: cache outcomes and getFeedSkeleton timings. */
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

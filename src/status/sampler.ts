import type { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import { withTimeout } from '../util/timeout.ts'

/** One reading of the cumulative counters, for rates and the admin chart. */
export interface Sample {
  /** ms since the epoch */
  t: number
  /** events stored, all kinds */
  stored: number
  /** events stored, by kind (cumulative) */
  kinds: Record<string, number>
  /** ingest lag in seconds (now − event time of the newest saved cursor), null when no source has a cursor */
  lagS: number | null
}

export interface Rates {
  /** seconds actually covered */
  seconds: number
  total: number
  kinds: Record<string, number>
}

export const SAMPLE_EVERY_MS = 10_000
/** one hour of samples */
export const SAMPLES_KEPT = 360

export const samplesKey = (queuePrefix: string) => `${queuePrefix}:ops:samples`

/**
 * Events per second over the last `windowMs` from a list of samples (any
 * order): the difference between the newest sample and the oldest one still
 * inside the window. Null when the samples cover less than `minMs`.
 */
export function ratesOver(samples: Sample[], windowMs: number, now = Date.now(), minMs = 5_000): Rates | null {
  const s = samples.filter((x) => x.t <= now).sort((a, b) => a.t - b.t)
  if (s.length < 2) return null
  const last = s[s.length - 1]
  const first = s.find((x) => x.t >= last.t - windowMs - 1000) ?? s[0]
  const dt = last.t - first.t
  if (dt < minMs) return null
  const kinds: Record<string, number> = {}
  for (const k of new Set([...Object.keys(last.kinds), ...Object.keys(first.kinds)])) {
    kinds[k] = Math.max(0, ((last.kinds[k] ?? 0) - (first.kinds[k] ?? 0)) / (dt / 1000))
  }
  return { seconds: Math.round(dt / 1000), total: Math.max(0, (last.stored - first.stored) / (dt / 1000)), kinds }
}

/** Points for the chart: events/s between consecutive samples, and the lag at each. */
export function series(samples: Sample[]): { t: number; eps: number; lagS: number | null }[] {
  const s = [...samples].sort((a, b) => a.t - b.t)
  const out: { t: number; eps: number; lagS: number | null }[] = []
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i].t - s[i - 1].t) / 1000
    if (dt <= 0) continue
    // a counter that went down means the database was replaced: no rate for that step
    const d = s[i].stored - s[i - 1].stored
    out.push({ t: s[i].t, eps: d >= 0 ? d / dt : 0, lagS: s[i].lagS })
  }
  return out
}

/**
 * Takes a sample every `everyMs` into a ring buffer in memory (one hour),
 * and mirrors each one to a capped Redis list so `skysift status` in another
 * process can compute rates too.
 */
export class Sampler {
  private readonly ring: Sample[] = []
  private readonly read: () => Sample
  private readonly redis: Redis | null
  private readonly key: string
  private readonly log: Logger
  private timer: NodeJS.Timeout | null = null

  constructor(read: () => Sample, opts: { redis?: Redis | null; queuePrefix: string; log: Logger }) {
    this.read = read
    this.redis = opts.redis ?? null
    this.key = samplesKey(opts.queuePrefix)
    this.log = opts.log
  }

  start(everyMs = SAMPLE_EVERY_MS): this {
    this.sample()
    this.timer = setInterval(() => this.sample(), everyMs)
    this.timer.unref()
    return this
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Takes one sample now (also used by tests). */
  sample(): Sample | null {
    let s: Sample
    try {
      s = this.read()
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'ops sample failed')
      return null
    }
    this.ring.push(s)
    if (this.ring.length > SAMPLES_KEPT) this.ring.splice(0, this.ring.length - SAMPLES_KEPT)
    if (this.redis) {
      const r = this.redis
      withTimeout(
        r
          .multi()
          .lpush(this.key, JSON.stringify(s))
          .ltrim(this.key, 0, SAMPLES_KEPT * 2 - 1)
          .expire(this.key, 2 * 3600)
          .exec(),
        1000,
      ).catch((err) => this.log.debug({ err: (err as Error).message }, 'ops sample not mirrored to Redis'))
    }
    return s
  }

  samples(): Sample[] {
    return [...this.ring]
  }
}

/** Samples mirrored to Redis by the serving processes (newest hour), oldest first. */
export async function readSamples(redis: Redis, queuePrefix: string, timeoutMs = 1000): Promise<Sample[]> {
  const raw = await withTimeout(redis.lrange(samplesKey(queuePrefix), 0, -1), timeoutMs)
  const out: Sample[] = []
  for (const r of raw) {
    try {
      out.push(JSON.parse(r) as Sample)
    } catch {
      // skip
    }
  }
  return out.sort((a, b) => a.t - b.t)
}

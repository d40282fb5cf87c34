import type { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import { RateBudget } from '../util/rate-budget.ts'
import { withTimeout } from '../util/timeout.ts'

type Spent = { retryAfterS: number; scope: 'key' | 'total' } | null

/*
 * KEYS: the key's attempts, everyone's attempts (sorted sets scored by time).
 * ARGV: now, window (ms), per-key budget, overall budget, a unique member.
 * Returns {0} when the attempt was counted, else {1 (key) | 2 (total), oldest attempt's time}.
 */
const TAKE = `
local now, win = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return {1, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return {2, redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], win)
redis.call('PEXPIRE', KEYS[2], win)
return {0}
`

let seq = 0

/**
 * A RateBudget every serving process shares (SKYSIFT_SERVE_PROCESSES > 1):
 * the attempts are kept in Redis, so N processes take the configured budget,
 * not N times it. While Redis does not answer, this process's own budget
 * decides (as with one process).
 */
export class SharedRateBudget {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly o: { perKey: number; total: number; windowMs: number }
  private readonly local: RateBudget
  private readonly log: Logger

  constructor(redis: Redis, prefix: string, opts: { perKey: number; total: number; windowMs: number }, log: Logger) {
    this.redis = redis
    this.prefix = prefix
    this.o = opts
    this.local = new RateBudget(opts)
    this.log = log
  }

  /** Like RateBudget.take: null when the attempt was counted, else how long to wait and which budget is spent. */
  async take(key: string, now = Date.now()): Promise<Spent> {
    const member = `${now}:${process.pid}:${seq++}`
    try {
      const r = (await withTimeout(
        this.redis.eval(TAKE, 2, `${this.prefix}:key:${key}`, `${this.prefix}:all`, now, this.o.windowMs, this.o.perKey, this.o.total, member),
        1000,
      )) as [number, string?]
      if (r[0] === 0) return null
      return { scope: r[0] === 1 ? 'key' : 'total', retryAfterS: Math.max(1, Math.ceil((Number(r[1]) + this.o.windowMs - now) / 1000)) }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'shared submission budget unreachable; this process counts alone')
      return this.local.take(key, now)
    }
  }
}

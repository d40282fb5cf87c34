import type { Redis } from 'ioredis'
import { EDGE_GROUP, edgeKeys, MAX_WRITES_BACKLOG_CHARS, TOUCH_MAXLEN, TOUCH_MIN_MS } from '../../contracts/edge.ts'
import type { UsageStore } from '../../feed/ports.ts'
import type { Logger } from '../../logger.ts'
import { withTimeout } from '../../util/timeout.ts'

/** Touches waiting to be sent at most (more are dropped: a touch is a hint, the reader's next page repeats it). */
const MAX_PENDING_TOUCHES = 10_000
/** (reader, feed) pairs whose last touch is remembered at most. */
const MAX_TOUCHED = 100_000
/** How long touches gather before they go to Redis in one round trip. */
const TOUCH_FLUSH_MS = 20
/**
 * Writes the primary has not read yet past which an edge refuses more (503): a primary down for long must not make
 * Redis hold an unbounded backlog (each entry is at most a 256 KiB body).
 */
export const MAX_WRITES_BACKLOG = 50_000
/** How long the backlog figure is trusted. */
const BACKLOG_TTL_MS = 1000

/**
 * What an edge node sends the primary through Redis (src/contracts/edge.ts): `touch` entries for the first pages it
 * serves (at most one per reader and feed per TOUCH_MIN_MS, gathered and sent together), `writes` it accepted for
 * the primary, and the usage counts of what it served (a UsageStore for UsageCounter: HINCRBY on `usage`).
 */
export class EdgeOutbox implements UsageStore {
  private readonly redis: Redis
  private readonly keys: ReturnType<typeof edgeKeys>
  private readonly log: Logger
  private readonly touched = new Map<string, number>()
  private pending: string[][] = []
  private timer: NodeJS.Timeout | null = null
  private readonly inFlight = new Set<Promise<unknown>>()
  private backlog = { at: -Infinity, n: 0, chars: 0 }
  private backlogLoad: Promise<number> | null = null
  private droppedTouches = 0

  constructor(redis: Redis, queuePrefix: string, log: Logger) {
    this.redis = redis
    this.keys = edgeKeys(queuePrefix)
    this.log = log
  }

  /** Notes a first page served to `did` (null: anonymous); the primary hears of it unless it did within TOUCH_MIN_MS. */
  touch(feed: string, did: string | null, interests: readonly string[], now = Date.now()): void {
    const k = `${did ?? ''} ${feed}`
    const last = this.touched.get(k)
    if (last !== undefined && now - last < TOUCH_MIN_MS) return
    if (this.touched.size >= MAX_TOUCHED) this.touched.clear()
    this.touched.set(k, now)
    if (this.pending.length >= MAX_PENDING_TOUCHES) {
      if (this.droppedTouches++ === 0) this.log.warn('touches are not reaching Redis; dropping them')
      return
    }
    this.pending.push(['feed', feed, 'did', did ?? '', 'int', interests.join(',')])
    this.timer ??= setTimeout(() => this.flushTouches(), TOUCH_FLUSH_MS)
  }

  private flushTouches(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const batch = this.pending
    this.pending = []
    if (!batch.length) return Promise.resolve()
    const m = this.redis.pipeline()
    for (const fields of batch) m.xadd(this.keys.touch, 'MAXLEN', '~', TOUCH_MAXLEN, '*', ...fields)
    return this.track(
      withTimeout(m.exec(), 5000).then(
        () => {
          this.droppedTouches = 0
        },
        (err) => this.log.warn({ err: (err as Error).message, touches: batch.length }, 'touches not sent'),
      ),
    )
  }

  /**
   * Queues a write for the primary (`writes`); resolves once Redis holds it. A 503-worthy error when the primary
   * is too far behind (MAX_WRITES_BACKLOG).
   */
  async write(kind: 'interactions', did: string, body: unknown): Promise<void> {
    const behind = await this.writesBacklog()
    if (behind >= MAX_WRITES_BACKLOG || this.backlog.chars >= MAX_WRITES_BACKLOG_CHARS) throw new WritesBacklogError(behind)
    const json = JSON.stringify(body)
    await withTimeout(
      this.redis.multi().xadd(this.keys.writes, '*', 'kind', kind, 'did', did, 'body', json).incrby(this.keys.writesSize, json.length).exec(),
      2000,
    )
    this.backlog.n++
    this.backlog.chars += json.length
  }

  /** Writes the primary has not read or not yet acknowledged (asked of Redis at most once per BACKLOG_TTL_MS). */
  writesBacklog(now = Date.now()): number | Promise<number> {
    if (now - this.backlog.at < BACKLOG_TTL_MS) return this.backlog.n
    this.backlogLoad ??= (async () => {
      try {
        const [[, groups], [, len], [, chars]] = (await withTimeout(
          this.redis.multi().xinfo('GROUPS', this.keys.writes).xlen(this.keys.writes).get(this.keys.writesSize).exec(),
          1000,
        )) as [[Error | null, unknown[][] | undefined], [Error | null, number], [Error | null, string | null]]
        let n = len ?? 0
        // @NOTE XINFO GROUPS fails on a stream that does not exist yet (then nothing is behind)
        for (const g of Array.isArray(groups) ? groups : []) {
          const f = new Map<string, unknown>()
          for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1])
          if (f.get('name') !== EDGE_GROUP) continue
          const lag = f.get('lag')
          n = (typeof lag === 'number' ? lag : n) + Number(f.get('pending') ?? 0)
        }
        this.backlog = { at: Date.now(), n, chars: Number(chars ?? 0) || 0 }
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'cannot tell the writes backlog')
        this.backlog.at = Date.now()
      } finally {
        this.backlogLoad = null
      }
      return this.backlog.n
    })()
    return this.backlogLoad
  }

  /** UsageStore: adds served items per agent to `usage` (the primary folds them into its store). */
  addItems(entries: [string, number][]): void {
    const m = this.redis.pipeline()
    for (const [agent, n] of entries) m.hincrby(this.keys.usage, agent, n)
    this.track(withTimeout(m.exec(), 5000).catch((err) => this.log.warn({ err: (err as Error).message, agents: entries.length }, 'usage counts lost')))
  }

  /** UsageStore: edges keep no usage of their own (the primary answers for it). */
  mixesPerAgent(): { agent: string; n: number }[] {
    return []
  }

  itemsPerAgent(): { agent: string; value: number }[] {
    return []
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p)
    void p.finally(() => this.inFlight.delete(p))
    return p
  }

  /** Sends what is waiting and waits for what is on its way. */
  async close(): Promise<void> {
    await this.flushTouches()
    await Promise.all([...this.inFlight])
  }
}

/** The primary has too many writes to catch up on: an edge takes no more for now. */
export class WritesBacklogError extends Error {
  readonly backlog: number
  constructor(backlog: number) {
    super(`the primary has ${backlog} writes to catch up on; try again later`)
    this.backlog = backlog
  }
}

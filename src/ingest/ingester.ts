import { randomBytes } from 'node:crypto'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import { jobId, type EventsJob } from '../contracts/jobs.ts'
import { whenNotBusy, type Sqlite } from '../store/db.ts'
import { IngestState } from '../store/ingest-state.ts'
import type { IngestEvent } from '../contracts/events.ts'
import { withTimeout } from '../util/timeout.ts'
import { backoffMs, sleep, type Source, type SourceItem } from './source.ts'
import type { IngestStats } from '../contracts/ingest.ts'

export interface IngesterOptions {
  batchSize: number
  /** flush a partial batch after this long */
  flushMs?: number
  /** pause reading while the events queue (and the `downstream` queues) hold more waiting jobs than this */
  highWater: number
  /**
   * queues fed by the consumers of the events queue (the store queue): their waiting jobs count towards the
   * high-water mark, so a slow or stopped store writer holds the ingest back instead of letting the score
   * workers move the backlog into Redis without bound
   */
  downstream?: Pick<Queue, 'getWaitingCount'>[]
  /** give up one attempt to reach Redis after this long (BullMQ waits forever for a connection) */
  enqueueTimeoutMs?: number
  /** where the ingest keeps its Redis epoch (the queue's Redis and prefix); without it an emptied Redis goes unnoticed */
  epoch?: { redis: Redis; prefix: string } | null
  /**
   * how often to ask whether Redis was emptied while a batch this ingest queued is not stored yet, reading or not
   * (a replay read to the end, a quiet live source): 0 asks only as batches are queued. Needs `epoch`; stop() ends it.
   */
  watchMs?: number
}

/** Thrown inside a flush when Redis lost queued batches: reading starts over from the rewound cursor. */
class RewindNeeded extends Error {}

const MAX_REJECTS_KEPT = 10_000
const EPOCH_CHECK_MS = 1000

/**
 * Reads a source, batches its events into the `events` queue, and saves
 * the source's cursor only after Redis has accepted the batch that contains
 * it. When Redis is down or the queue is over its high-water mark, the sink
 * stops returning, which stops the source reading.
 */
export class Ingester {
  readonly source: Source
  readonly stats: IngestStats = {
    received: 0,
    queued: 0,
    rejected: 0,
    batches: 0,
    lastCursor: null,
    lastEventTime: null,
    pausedForBackpressureMs: 0,
    redisErrors: 0,
    rewinds: 0,
  }
  private readonly queue: Queue<EventsJob>
  private readonly log: Logger
  private readonly opts: Required<IngesterOptions>
  private readonly abort = new AbortController()
  private batch: IngestEvent[] = []
  private batchFirst: number | null = null
  private batchCursor: number | null = null
  private batchTime = 0
  private flushing: Promise<void> = Promise.resolve()
  /** set when a batch could not be queued: no cursor may be saved past it */
  private lost = false
  private timer: NodeJS.Timeout | null = null
  /** the waiting count (events and downstream queues) when last asked, when, and jobs added since (see waitBelowHighWater) */
  private lastCount = 0
  private countedAt = 0
  private addedSinceCount = 0
  private running: Promise<void> | null = null
  /** the Redis epoch this ingest has seen (see checkEpoch), and when it last looked */
  private epoch: string | null = null
  private epochCheckedAt = 0
  /** set while the source is being stopped to read again from a rewound cursor */
  private rewinding = false
  /** set while the source is being read (start, or reading again after an emptied Redis was found once it had ended) */
  private reading = false
  /** a reading started again by the watcher (see watch) */
  private reread: Promise<void> | null = null
  private watcher: NodeJS.Timeout | null = null
  private watching = false
  /** the cursor saved last (where a restart would resume after) */
  private saved: number | undefined
  private readonly state: IngestState

  constructor(source: Source, queue: Queue<EventsJob>, db: Sqlite, log: Logger, opts: IngesterOptions) {
    this.source = source
    this.queue = queue
    this.log = log
    this.opts = { flushMs: 250, enqueueTimeoutMs: 5000, epoch: null, downstream: [], watchMs: 0, ...opts }
    this.state = new IngestState(db, source.name)
  }

  /** The cursor saved for this source, if any. */
  savedCursor(): number | undefined {
    return this.state.cursor()
  }

  /**
   * Starts reading from the saved cursor. Resolves when the source ends (replay) or stop() is called. With
   * `watchMs`, an emptied Redis is looked for until stop(), and what it lost is read again even after the end.
   */
  start(): Promise<void> {
    if (this.running) return this.running
    this.log.info({ source: this.source.name, cursor: this.savedCursor() }, 'ingest starting')
    if (this.opts.epoch && this.opts.watchMs > 0) {
      this.watcher = setInterval(() => void this.watch(), this.opts.watchMs)
      this.watcher.unref()
    }
    this.running = this.read().finally(() => this.log.info({ source: this.source.name, ...this.stats }, 'ingest stopped'))
    return this.running
  }

  /** Reads from the saved cursor until the source ends or stop(), flushing partial batches meanwhile. */
  private read(): Promise<void> {
    this.reading = true
    this.timer = setInterval(() => {
      if (this.batch.length || this.batchCursor !== null) void this.flush()
    }, this.opts.flushMs)
    const read = async (): Promise<void> => {
      // @NOTE checked before reading too: a restart at the end of a replay reads nothing that would make it check
      await this.checkEpoch().catch((err) => this.log.debug({ err: (err as Error).message }, 'redis epoch not checked yet'))
      for (;;) {
        this.saved = this.savedCursor()
        // batches from here on are read again, and recorded again as they are queued
        this.state.dropPendingFrom(this.saved ?? -Infinity)
        await this.source.run((item) => this.push(item), this.saved)
        if (!this.rewinding || this.abort.signal.aborted) return this.flush()
        // Redis lost batches it held: start over from the rewound cursor (what was read since is read again)
        await this.flushing.catch(() => {})
        this.batch = []
        this.batchFirst = null
        this.batchCursor = null
        this.batchTime = 0
        this.rewinding = false
      }
    }
    return read()
      .catch((err) => this.log.warn({ err: err.message }, 'ingest ended with a batch not queued'))
      .finally(() => {
        if (this.timer) clearInterval(this.timer)
        this.timer = null
        this.reading = false
      })
  }

  /**
   * One look of the watcher: when a batch this ingest queued is not stored yet and Redis was not asked for a
   * second, asks it for the epoch; an emptied Redis rewinds the cursor (checkEpoch) and the source is read
   * again from there: restarted when reading had ended, else stopped to start over as after a failed queueing.
   */
  private async watch(): Promise<void> {
    if (this.watching || this.rewinding || this.abort.signal.aborted || Date.now() - this.epochCheckedAt < EPOCH_CHECK_MS) return
    if (!this.state.hasPending()) return
    this.watching = true
    // @NOTE in line with the flushes: a batch being queued meanwhile would save its cursor past the rewind
    const look = this.flushing
      .catch(() => {})
      .then(async () => {
        if (this.abort.signal.aborted || (await this.checkEpoch()) || this.abort.signal.aborted) return
        if (this.reading) {
          this.rewinding = true
          await this.source.stop()
        } else {
          this.reread = this.read()
        }
      })
    this.flushing = look
    try {
      await look
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'redis epoch not checked; will try again')
    } finally {
      this.watching = false
    }
  }

  /** Stops reading, flushes what was read, and saves the cursor. */
  async stop(): Promise<void> {
    this.abort.abort()
    if (this.watcher) clearInterval(this.watcher)
    this.watcher = null
    await this.source.stop()
    await this.running?.catch(() => {})
    await this.reread?.catch(() => {})
    await this.flush().catch((err) => this.log.warn({ err: err.message }, 'last batch not queued; it will be read again'))
  }

  private async push(item: SourceItem): Promise<void> {
    if (this.rewinding) return // read again after the rewind
    this.stats.received++
    if ('rejected' in item) {
      this.stats.rejected++
      this.state.reject(item.rejected, item.payload)
      if (this.stats.rejected % 1000 === 0) this.state.trimRejects(MAX_REJECTS_KEPT)
      this.log.debug({ reason: item.rejected }, 'rejected event')
    } else if (item.event) {
      this.batch.push(item.event)
    }
    if (item.cursor !== null) {
      this.batchFirst ??= item.cursor
      this.batchCursor = item.cursor
      this.stats.lastCursor = item.cursor
    }
    this.batchTime = Math.max(this.batchTime, item.timeMs)
    this.stats.lastEventTime = this.batchTime
    if (this.batch.length >= this.opts.batchSize) await this.flush()
  }

  /** Flushes are serialized: the next one starts after the previous one is safe. */
  flush(): Promise<void> {
    this.flushing = this.flushing.catch(() => {}).then(() => this.flushOnce())
    return this.flushing
  }

  private async flushOnce(): Promise<void> {
    const events = this.batch
    const first = this.batchFirst
    const cursor = this.batchCursor
    const eventTime = this.batchTime
    if (!events.length && cursor === null) return
    if (this.lost || this.rewinding) return
    this.batch = []
    this.batchFirst = null
    this.batchCursor = null
    if (events.length) {
      // @NOTE the Redis epoch is part of the id: after Redis lost its jobs, a batch read again is a new job, not a
      // duplicate of one a worker still held (and finished) in the old epoch, which BullMQ would ignore
      const id = jobId('ev', this.source.name, this.epoch ?? 0, first ?? 0, cursor ?? 0, events.length)
      const job: EventsJob = { id, source: this.source.name, events, eventTime }
      // @NOTE recorded as pending (with where to read it again from) before Redis has it, so the writer, which removes
      // the row when it stores the batch, can never come first; rows whose cursor was never saved are dropped at restart
      await whenNotBusy(
        () => this.state.addPending(id, String(this.saved ?? (first ?? cursor ?? 0) - 1)),
        (attempt) => this.log.warn({ attempt }, 'database busy past its timeout; trying again'),
      )
      try {
        await this.enqueue(job)
      } catch (err) {
        if (err instanceof RewindNeeded) return
        this.lost = true
        throw err
      }
      this.stats.queued += events.length
      this.stats.batches++
    }
    if (cursor === null) return
    this.state.saveCursor(cursor, eventTime || null)
    this.saved = cursor
  }

  /**
   * Tells a Redis that still holds what this ingest queued from one that
   * lost it (restarted without persistence, flushed, replaced): the ingest
   * keeps a random epoch in Redis and in SQLite. When Redis has another one,
   * or none, every batch not yet stored is gone with it: the saved cursor is
   * set back to the oldest pending batch of this source, and reading starts
   * over from there (the writer's upserts make what is read twice harmless).
   * Returns false when reading must start over.
   */
  private async checkEpoch(): Promise<boolean> {
    if (!this.opts.epoch) return true
    const { redis, prefix } = this.opts.epoch
    const key = `${prefix}:epoch:${this.source.name}`
    const inRedis = await withTimeout(redis.get(key), this.opts.enqueueTimeoutMs)
    this.epochCheckedAt = Date.now()
    if (inRedis !== null && inRedis === (this.epoch ?? this.state.epoch() ?? '')) {
      this.epoch = inRedis
      return true
    }
    // only batches behind the saved cursor were accepted by Redis; the others are read again from the cursor anyway
    const current = this.savedCursor()
    const pending = this.state.pendingResumePoints().filter((c) => Number.isFinite(c) && (current === undefined || c < current))
    const fresh = String(randomBytes(6).readUIntBE(0, 6))
    const rewindTo = pending.length ? Math.min(...pending) : null
    // the batches read again are queued anew, under new ids: their old rows would wait for jobs that are gone
    this.state.newEpoch(fresh, rewindTo)
    await withTimeout(redis.set(key, fresh), this.opts.enqueueTimeoutMs)
    const known = this.epoch !== null || this.state.epoch() !== null
    this.epoch = fresh
    if (rewindTo === null) {
      // @NOTE the usual case after a restart with a Redis that keeps nothing on disk: nothing was lost, so nothing to warn about
      if (known) this.log.debug({ source: this.source.name }, 'redis was emptied; no batch was waiting, nothing to read again')
      return true
    }
    this.stats.rewinds++
    this.log.warn({ source: this.source.name, from: current, to: rewindTo, pendingBatches: pending.length }, 'redis lost queued batches; ingest rewound')
    this.saved = rewindTo
    return false
  }

  /** Adds a job, waiting out a full queue or a Redis outage; never drops the batch. */
  private async enqueue(job: EventsJob): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // @NOTE a timed-out add may still land later; the job id makes the retry a no-op then
        // @NOTE at most once a second (and after every failed attempt): each await here waits for the event loop,
        // which the store writer may hold for a transaction; batches queued meanwhile to an emptied Redis are read again anyway
        if ((attempt > 0 || Date.now() - this.epochCheckedAt >= EPOCH_CHECK_MS) && !(await this.checkEpoch())) {
          this.rewinding = true
          void this.source.stop()
          throw new RewindNeeded()
        }
        await this.waitBelowHighWater()
        await withTimeout(this.queue.add('batch', job, { jobId: job.id }), this.opts.enqueueTimeoutMs)
        if (attempt > 0) this.log.info({ attempt }, 'redis is back; ingest resumed')
        return
      } catch (err) {
        if (err instanceof RewindNeeded) throw err
        this.stats.redisErrors++
        // @NOTE stopping while Redis is down: give up on this batch without saving its cursor, so a restart reads it again
        if (this.abort.signal.aborted) throw new Error('ingest stopped before the batch reached Redis')
        const wait = backoffMs(attempt, 250, 10_000)
        if (attempt === 0 || attempt % 10 === 0) this.log.warn({ err: (err as Error).message, waitMs: wait }, 'cannot queue events; ingest paused')
        await sleep(wait, this.abort.signal)
      }
    }
  }

  /**
   * Waits while the queues are over the high-water mark. The count is asked of
   * Redis only when it could be near the mark: the last count plus the jobs
   * added since is an upper bound, give or take the few jobs the score workers
   * held at the time (a score worker turns one events job into at most one
   * store job; the store writer only takes jobs away), so while that is under
   * half the mark, and the count is less than a second old, no round trip is needed.
   */
  private async waitBelowHighWater(): Promise<void> {
    if (this.addedSinceCount + this.lastCount < this.opts.highWater / 2 && Date.now() - this.countedAt < 1000) {
      this.addedSinceCount++
      return
    }
    const t0 = Date.now()
    const waiting = async () => {
      const counts = [this.queue, ...this.opts.downstream].map((q) => q.getWaitingCount())
      this.lastCount = (await withTimeout(Promise.all(counts), this.opts.enqueueTimeoutMs)).reduce((a, b) => a + b, 0)
      this.countedAt = Date.now()
      this.addedSinceCount = 0
      return this.lastCount
    }
    while (!this.abort.signal.aborted && (await waiting()) > this.opts.highWater) await sleep(50, this.abort.signal)
    this.addedSinceCount++
    this.stats.pausedForBackpressureMs += Date.now() - t0
  }
}

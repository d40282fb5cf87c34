import type { Queue } from 'bullmq'
import type { Logger } from '../logger.ts'
import { jobId, type EventsJob } from '../queue.ts'
import type { Sqlite } from '../store/db.ts'
import type { IngestEvent } from './events.ts'
import { withTimeout } from '../util/timeout.ts'
import { backoffMs, sleep, type Source, type SourceItem } from './source.ts'

export interface IngesterOptions {
  batchSize: number
  /** flush a partial batch after this long */
  flushMs?: number
  /** pause reading while the events queue holds more waiting jobs than this */
  highWater: number
  /** give up one attempt to reach Redis after this long (BullMQ waits forever for a connection) */
  enqueueTimeoutMs?: number
}

export interface IngestStats {
  received: number
  queued: number
  rejected: number
  batches: number
  lastCursor: number | null
  lastEventTime: number | null
  pausedForBackpressureMs: number
  redisErrors: number
}

const MAX_REJECTS_KEPT = 10_000

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
  }
  private readonly queue: Queue<EventsJob>
  private readonly db: Sqlite
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
  /** the events queue's waiting count when last asked, when, and jobs added since (see waitBelowHighWater) */
  private lastCount = 0
  private countedAt = 0
  private addedSinceCount = 0
  private running: Promise<void> | null = null
  private readonly saveCursor
  private readonly loadCursor
  private readonly saveReject
  private readonly trimRejects

  constructor(source: Source, queue: Queue<EventsJob>, db: Sqlite, log: Logger, opts: IngesterOptions) {
    this.source = source
    this.queue = queue
    this.db = db
    this.log = log
    this.opts = { flushMs: 250, enqueueTimeoutMs: 5000, ...opts }
    this.saveCursor = db.prepare(
      `INSERT INTO cursors (source, cursor, event_time, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor, event_time = excluded.event_time, updated_at = excluded.updated_at`,
    )
    this.loadCursor = db.prepare('SELECT cursor FROM cursors WHERE source = ?').pluck()
    this.saveReject = db.prepare('INSERT INTO rejected_events (source, reason, payload, at) VALUES (?, ?, ?, ?)')
    this.trimRejects = db.prepare('DELETE FROM rejected_events WHERE id <= (SELECT max(id) FROM rejected_events) - ?')
  }

  /** The cursor saved for this source, if any. */
  savedCursor(): number | undefined {
    const c = this.loadCursor.get(this.source.name) as string | undefined
    return c === undefined ? undefined : Number(c)
  }

  /** Starts reading from the saved cursor. Resolves when the source ends (replay) or stop() is called. */
  start(): Promise<void> {
    if (this.running) return this.running
    const cursor = this.savedCursor()
    this.log.info({ source: this.source.name, cursor }, 'ingest starting')
    this.timer = setInterval(() => {
      if (this.batch.length || this.batchCursor !== null) void this.flush()
    }, this.opts.flushMs)
    this.running = this.source
      .run((item) => this.push(item), cursor)
      .then(() => this.flush())
      .catch((err) => this.log.warn({ err: err.message }, 'ingest ended with a batch not queued'))
      .finally(() => {
        if (this.timer) clearInterval(this.timer)
        this.timer = null
        this.log.info({ source: this.source.name, ...this.stats }, 'ingest stopped')
      })
    return this.running
  }

  /** Stops reading, flushes what was read, and saves the cursor. */
  async stop(): Promise<void> {
    this.abort.abort()
    await this.source.stop()
    await this.running?.catch(() => {})
    await this.flush().catch((err) => this.log.warn({ err: err.message }, 'last batch not queued; it will be read again'))
  }

  private async push(item: SourceItem): Promise<void> {
    this.stats.received++
    if ('rejected' in item) {
      this.stats.rejected++
      this.saveReject.run(this.source.name, item.rejected, item.payload.slice(0, 4096), Date.now())
      if (this.stats.rejected % 1000 === 0) this.trimRejects.run(MAX_REJECTS_KEPT)
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
    if (this.lost) return
    this.batch = []
    this.batchFirst = null
    this.batchCursor = null
    if (events.length) {
      const id = jobId('ev', this.source.name, first ?? 0, cursor ?? 0, events.length)
      const job: EventsJob = { id, source: this.source.name, events, eventTime }
      try {
        await this.enqueue(job)
      } catch (err) {
        this.lost = true
        throw err
      }
      this.stats.queued += events.length
      this.stats.batches++
    }
    if (cursor !== null) this.saveCursor.run(this.source.name, String(cursor), eventTime || null, Date.now())
  }

  /** Adds a job, waiting out a full queue or a Redis outage; never drops the batch. */
  private async enqueue(job: EventsJob): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // @NOTE a timed-out add may still land later; the job id makes the retry a no-op then
        await this.waitBelowHighWater()
        await withTimeout(this.queue.add('batch', job, { jobId: job.id }), this.opts.enqueueTimeoutMs)
        if (attempt > 0) this.log.info({ attempt }, 'redis is back; ingest resumed')
        return
      } catch (err) {
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
   * Waits while the queue is over its high-water mark. The count is asked of
   * Redis only when it could be near the mark: the last count plus the jobs
   * added since stays an upper bound (consumers only take jobs away), so while
   * that is under half the mark, and the count is recent, no round trip is needed.
   */
  private async waitBelowHighWater(): Promise<void> {
    if (this.addedSinceCount + this.lastCount < this.opts.highWater / 2 && Date.now() - this.countedAt < 1000) {
      this.addedSinceCount++
      return
    }
    const t0 = Date.now()
    const waiting = async () => {
      this.lastCount = await withTimeout(this.queue.getWaitingCount(), this.opts.enqueueTimeoutMs)
      this.countedAt = Date.now()
      this.addedSinceCount = 0
      return this.lastCount
    }
    while (!this.abort.signal.aborted && (await waiting()) > this.opts.highWater) await sleep(50, this.abort.signal)
    this.addedSinceCount++
    this.stats.pausedForBackpressureMs += Date.now() - t0
  }
}

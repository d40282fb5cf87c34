import type { IngestEvent } from '../contracts/events.ts'
import { COLLECTIONS } from '../contracts/events.ts'
import { isRejected, normalizeCommit } from '../ingest/events.ts'
import { parseAtUri } from '../util/at-ids.ts'
import type { Logger } from '../logger.ts'
import type { ReaderStore } from '../store/readers.ts'
import type { StoreBatch } from '../contracts/jobs.ts'
import { listRecords, type RepoRecord } from './repo-records.ts'

export interface ReaderBackfillDeps {
  readers: ReaderStore
  /** the PDS named in a DID document (resolved with the server's cached IdResolver), null when it names none */
  resolvePds: (did: string) => Promise<string | null>
  /** hands a batch to the store writer (the `store` queue) */
  enqueue: (batch: StoreBatch) => Promise<void>
  /** an SSRF-guarded fetch (the platform's only on local networks) */
  fetch: typeof fetch
  log: Logger
  /** told when a reader's backfilled graph is stored (their personal lists are rebuilt) */
  onLanded?: (did: string) => void
}

export interface ReaderBackfillOptions {
  /** records read per collection (likes: the newest), and members per block list */
  maxRecords: number
  /** backfills running at once */
  concurrency: number
  /** readers waiting at most; more are left to the next look at the pending ones */
  maxWaiting: number
  /** one backfill is given up (and retried later) after this */
  timeoutMs: number
  /** how often the pending readers (mix records, retries, new block lists) are looked at */
  pollMs?: number
  /** how often a stored backfill is looked for */
  landPollMs?: number
  /** the first retry waits this long, doubling per failure */
  retryBaseMs?: number
  /** a reader's `last_seen` is written at most this often per process */
  touchEveryMs?: number
}

/** The collections read from a reader's own repo. */
const READER_COLLECTIONS = [COLLECTIONS.follow, COLLECTIONS.block, COLLECTIONS.listblock, COLLECTIONS.like] as const
/** Block lists whose members are read per reader at most. */
const MAX_BLOCK_LISTS = 8
/** A list owner's repo holds items of all their lists: this many times `maxRecords` items are looked at per list. */
const LIST_SCAN_FACTOR = 5
/** Readers remembered as touched (per process) at most. */
const MAX_TOUCHED = 100_000

/**
 * Backfills a reader's graph from their own repo the first time they are
 * seen: follows, blocks, block-list subscriptions with those lists'
 * members, and their newest likes, read with `com.atproto.repo.listRecords`
 * from the PDS their DID document names. Bounded: records per collection,
 * a time limit per backfill, a few at once, a bounded line of waiting
 * readers, retries with a doubling wait. Never in the way of serving: a
 * request only notes the reader; the records are stored when they come, and
 * the reader's personal lists are rebuilt then.
 *
 * @NOTE the records go to the store writer as one batch on the `store`
 * queue rather than into SQLite from here: SQLite has one writer, this may
 * run in a serving process on another connection (or machine, once serving
 * scales out), and the writer applies the batch in one transaction with the
 * same rules as the firehose's (tombstones win, replays change nothing), so
 * a follow deleted meanwhile stays deleted and the graph lands all at once.
 */
export class ReaderBackfill {
  private readonly d: ReaderBackfillDeps
  private readonly o: Required<ReaderBackfillOptions>
  private readonly touched = new Map<string, number>()
  private readonly waiting = new Set<string>()
  private readonly running = new Map<string, AbortController>()
  private readonly idleWaiters: (() => void)[] = []
  private poller: NodeJS.Timeout | null = null
  private stopped = false

  constructor(deps: ReaderBackfillDeps, opts: ReaderBackfillOptions) {
    this.d = deps
    this.o = { pollMs: 5000, landPollMs: 200, retryBaseMs: 5000, touchEveryMs: 3_600_000, ...opts }
  }

  /** Looks at the pending readers now and every pollMs. */
  start(): this {
    if (this.o.concurrency <= 0) return this
    this.poll()
    this.poller = setInterval(() => this.poll(), this.o.pollMs)
    this.poller.unref()
    return this
  }

  /** Stops looking, aborts the backfills under way (their readers are retried later) and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.poller) clearInterval(this.poller)
    this.waiting.clear()
    for (const ac of this.running.values()) ac.abort()
    await this.idle()
  }

  /** Resolves when no backfill is waiting or running (tests, shutdown). */
  idle(): Promise<void> {
    if (!this.waiting.size && !this.running.size) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Backfills running and readers waiting, now. */
  stats(): { running: number; waiting: number } {
    return { running: this.running.size, waiting: this.waiting.size }
  }

  /**
   * A signed-in reader was seen: noted (at most once per touchEveryMs here; from then on the writer keeps their
   * follows, blocks and likes), and backfilled if their graph never was (unless the backfill is off).
   */
  seen(did: string, now = Date.now()): void {
    if (this.stopped) return
    const last = this.touched.get(did)
    if (last !== undefined && now - last < this.o.touchEveryMs) return
    if (this.touched.size >= MAX_TOUCHED) this.touched.clear()
    this.touched.set(did, now)
    try {
      const s = this.d.readers.touch(did, now)
      if (this.o.concurrency > 0 && s.backfilledAt === null && s.nextTryAt <= now && s.claimedUntil <= now) this.schedule(did)
    } catch (err) {
      // @NOTE never in the way of serving: a busy database only delays the backfill to the next poll
      this.touched.delete(did)
      this.d.log.warn({ did, err: (err as Error).message }, 'cannot note reader')
    }
  }

  private poll(): void {
    if (this.stopped) return
    const room = this.o.concurrency - this.running.size + Math.max(0, this.o.maxWaiting - this.waiting.size)
    if (room <= 0) return
    try {
      for (const did of this.d.readers.pending(Math.min(room, this.o.concurrency * 4))) this.schedule(did)
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'cannot read pending readers')
    }
  }

  private schedule(did: string): void {
    if (this.running.has(did) || this.waiting.has(did)) return
    if (this.waiting.size >= this.o.maxWaiting) {
      this.d.log.debug({ did, waiting: this.waiting.size }, 'backfill line full; reader left for later')
      return
    }
    this.waiting.add(did)
    this.pump()
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.o.concurrency && this.waiting.size) {
      const did = this.waiting.values().next().value as string
      this.waiting.delete(did)
      const ac = new AbortController()
      this.running.set(did, ac)
      void this.run(did, ac).finally(() => {
        this.running.delete(did)
        this.pump()
        if (!this.waiting.size && !this.running.size) for (const w of this.idleWaiters.splice(0)) w()
      })
    }
    if (!this.waiting.size && !this.running.size) for (const w of this.idleWaiters.splice(0)) w()
  }

  private async run(did: string, ac: AbortController): Promise<void> {
    const { readers, log } = this.d
    const started = Date.now()
    // @NOTE claimed in SQLite: another serving process, or a poll here, does not start the same backfill
    if (!readers.claim(did, 2 * this.o.timeoutMs + 10_000, started)) return
    const timer = setTimeout(() => ac.abort(new Error('backfill timed out')), this.o.timeoutMs)
    try {
      const events = await this.fetchGraph(did, ac.signal)
      const batch: StoreBatch = {
        id: `backfill-${did}-${started}`,
        events: [...events, { t: 'reader', did, backfilledAt: started }],
        scores: [],
        // @NOTE no event time: the records are older than anything the ingest reads, and likes of posts not stored
        // must not wait for them (PENDING_ENGAGEMENT_MS)
        eventTime: 0,
      }
      await this.d.enqueue(batch)
      log.info({ did, records: events.length, ms: Date.now() - started }, 'reader graph fetched')
      if (await this.landed(did, started, ac.signal)) {
        log.debug({ did, ms: Date.now() - started }, 'reader graph stored')
        this.d.onLanded?.(did)
      } else if (!this.stopped) {
        // @NOTE queued but not stored in time (the store worker is behind or down): it lands when the writer gets to
        // it; until then the reader waits like after a failure, rather than being fetched again every claim
        const attempts = readers.failed(did, this.o.retryBaseMs)
        log.warn({ did, attempts }, 'reader graph not stored in time')
      }
    } catch (err) {
      if (this.stopped) {
        readers.release(did)
        return
      }
      const attempts = readers.failed(did, this.o.retryBaseMs)
      log.warn({ did, attempts, err: (err as Error).message }, 'reader backfill failed')
    } finally {
      clearTimeout(timer)
    }
  }

  /** Waits (within the backfill's time) until the writer stored the batch. */
  private async landed(did: string, started: number, signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const s = this.d.readers.state(did)
      if (s?.backfilledAt !== null && s?.backfilledAt !== undefined && s.backfilledAt >= started) return true
      await new Promise((r) => setTimeout(r, this.o.landPollMs))
    }
    // @NOTE fetched and queued: the writer stores it later; the lists catch up at their next refresh
    return false
  }

  /** The reader's records as events, in the order the writer needs (block lists before their members). */
  private async fetchGraph(did: string, signal: AbortSignal): Promise<IngestEvent[]> {
    const pds = await this.d.resolvePds(did)
    if (!pds) throw new Error('no PDS in the DID document')
    const opts = { fetch: this.d.fetch, signal, max: this.o.maxRecords }
    const events: IngestEvent[] = []
    const lists = new Set<string>()
    for (const collection of READER_COLLECTIONS) {
      for (const r of await listRecords(pds, did, collection, opts)) {
        const e = toEvent(did, collection, r)
        if (!e) continue
        events.push(e)
        if (e.t === 'listblock' && lists.size < MAX_BLOCK_LISTS) lists.add(e.list)
      }
    }
    for (const list of lists) {
      const owner = parseAtUri(list)!.did
      const ownerPds = owner === did ? pds : await this.d.resolvePds(owner)
      if (!ownerPds) continue
      const items = await listRecords(ownerPds, owner, COLLECTIONS.listitem, {
        ...opts,
        maxScanned: this.o.maxRecords * LIST_SCAN_FACTOR,
        keep: (r) => r.value.list === list,
      })
      for (const r of items) {
        const e = toEvent(owner, COLLECTIONS.listitem, r)
        if (e) events.push(e)
      }
    }
    return events
  }
}

/** A listed record as the event the firehose would have carried for it (null: not the repo's, malformed, or not used). */
function toEvent(repo: string, collection: string, r: RepoRecord): IngestEvent | null {
  const at = parseAtUri(r.uri)
  // @NOTE a PDS answers for its repos only: a record naming another repo or collection is not taken from it
  if (!at || at.did !== repo || at.collection !== collection) return null
  const e = normalizeCommit({ did: repo, collection, rkey: at.rkey, operation: 'create', record: r.value, cid: r.cid, timeMs: Date.now() })
  return e && !isRejected(e) ? e : null
}

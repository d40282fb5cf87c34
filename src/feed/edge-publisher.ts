import { randomBytes } from 'node:crypto'
import os from 'node:os'
import type { Redis } from 'ioredis'
import {
  EDGE_GROUP,
  MAX_EXCLUDED_AUTHORS,
  PRIMARY_BEAT_MS,
  READER_EXCLUDED_FIELD,
  READER_TTL_S,
  edgeKeys,
  readerFeedField,
  readerInterestsField,
  type EdgeItem,
  type EdgeSnapshot,
} from '../contracts/edge.ts'
import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import { MAX_INTERESTS } from '../rank/interests.ts'
import { knownTopics } from '../score/agents/topics.ts'
import type { ChangeLogRepository } from '../store/change-log.ts'
import type { ReaderFilter } from '../store/reader-filter.ts'
import type { SnapshotInfo } from '../store/snapshots.ts'
import { withTimeout } from '../util/timeout.ts'
import { yieldToLoop } from '../util/work-queue.ts'
import { INTERACTIONS_CHUNK, readInteractions } from './interactions-input.ts'
import type { UsageStore } from './ports.ts'
import type { FeedService } from './service.ts'
import type { SnapshotPages } from './snapshot-pages.ts'

/** How often the primary looks for deletions and consent changes to publish to `changes`. */
export const CHANGES_POLL_MS = 100
/** How long a saved mix waits for the reader's placement on its feed to be published before it is answered. */
export const MIX_PLACE_WAIT_MS = 2000
/** How often the usage edges counted is folded into the store. */
export const USAGE_DRAIN_MS = 10_000
/** How often entries a dead consumer took (and never acknowledged) are claimed, and how long they must have waited. */
export const CLAIM_EVERY_MS = 60_000
export const CLAIM_IDLE_MS = 30_000
/** How long one read of `touch` and `writes` waits for entries. */
const BLOCK_MS = 1000
/** Entries read from `touch` and `writes` at a time. */
const READ_COUNT = 100
/** Snapshot ids remembered as published (past this the oldest are published again when next placed). */
const MAX_PUBLISHED = 10_000
/** Deletions and consent rows published per statement. */
const CHANGES_CHUNK = 1000
/** Rows one look at the change logs publishes at most (the rest on the next look). */
const CHANGES_PER_POLL = 20_000
/** Deletions and flagged authors a `changes` stream started from nothing is seeded with at most. */
const SEED_MAX = 100_000
/** Consent rows are read again from this far before the newest seen (the writer's clock, commits in between). */
const CONSENT_MARGIN_MS = 10_000
/** Consent flags remembered as published (past this they are forgotten, and some published again). */
const MAX_CONSENT_MEMO = 100_000
/** `changes` keeps entries this much longer than the snapshot TTL (a snapshot published at the end of its life). */
const TRIM_MARGIN_MS = 60_000
/** Readers waiting to be placed again at most (more are left to their next touch). */
const MAX_REPLACING = 10_000
/** The longest `writes` body read (the primary's sendInteractions takes 256 KiB; JSON of it may be a little longer). */
const MAX_WRITE_BODY = 320 * 1024
const DID_RE = /^did:[a-z]+:[A-Za-z0-9._:%-]{1,2000}$/
/** Agent ids of the `usage` hash (longer ones are dropped), and the most items one drain may add per agent. */
const MAX_AGENT_ID = 200
const MAX_USAGE_ITEMS = 1e12

/** Atomically takes the `usage` hash (what edges counted since the last drain). */
const TAKE_HASH = `local v = redis.call('HGETALL', KEYS[1]) redis.call('DEL', KEYS[1]) return v`

export interface EdgePublisherDeps {
  feeds: Pick<FeedService, 'feeds' | 'feed' | 'place' | 'readerSeen' | 'addFeedback'>
  pages: Pick<SnapshotPages, 'snapshotKey' | 'storedListIfAny' | 'postExists'>
  readerFilter: Pick<ReaderFilter, 'blockedFor'>
  changes: Pick<ChangeLogRepository, 'deletionSpan' | 'deletionsSince' | 'consentVersion' | 'consentSince' | 'consentFlagged' | 'newestConsentAt'>
  usage: Pick<UsageStore, 'addItems'>
  /** commands */
  redis: Redis
  /** a connection of its own for the blocking reads of `touch` and `writes` (closed by stop()) */
  blocking: Redis
  queuePrefix: string
  snapshotTtlMs: number
  /** the secret paging cursors are signed with (published as `meta` `cursor`) */
  cursorSecret: string
  log: Logger
  /**
   * the first serving process: it says the primary is alive, keeps the anonymous pointers, publishes `changes`,
   * drains `usage` and claims what dead consumers left; other serving processes only place readers
   */
  leader: boolean
  /** the consumer name in EDGE_GROUP (hostname:pid by default) */
  consumer?: string
  /** shorter intervals for tests */
  timings?: Partial<{ beatMs: number; pollMs: number; usageMs: number; claimEveryMs: number; claimIdleMs: number; blockMs: number }>
}

type StreamEntry = [id: string, fields: string[] | null]

/**
 * What a primary publishes to Redis for edge nodes (serving nodes that need
 * only Redis; see contracts/edge.ts), and what it drains of what they send
 * back: a reader's placement (the snapshot their first page is read from,
 * and the authors they must not be shown), the snapshots placements name,
 * every feed's anonymous pointer, the deletions and consent changes that
 * take posts out of published snapshots, readers' touches and writes, and
 * the usage edges counted.
 */
export class EdgePublisher {
  private readonly d: EdgePublisherDeps
  private readonly keys: ReturnType<typeof edgeKeys>
  private readonly consumer: string
  private readonly t: { beatMs: number; pollMs: number; usageMs: number; claimEveryMs: number; claimIdleMs: number; blockMs: number }
  /** snapshot ids published (SET in Redis), with when (least recently published first) */
  private readonly published = new Map<number, number>()
  /** the anonymous pointer last set per feed */
  private readonly anonIds = new Map<string, number>()
  /** readers to place again, not started yet */
  private readonly replacing = new Map<string, Promise<void>>()
  private readonly consentMemo = new Map<string, string>()
  private epoch: string | null = null
  private delSeq = 0
  private consentAt = 0
  private consentVersion = -1
  private readPending = true
  private stopped = true
  private readonly timers = new Set<NodeJS.Timeout>()
  private running = new Set<Promise<unknown>>()
  private loop: Promise<void> | null = null
  /** leader work that must not interleave (publishing changes, starting over) */
  private serial: Promise<unknown> = Promise.resolve()

  constructor(deps: EdgePublisherDeps) {
    this.d = deps
    this.keys = edgeKeys(deps.queuePrefix)
    this.consumer = deps.consumer ?? `${os.hostname()}:${process.pid}`
    this.t = {
      beatMs: PRIMARY_BEAT_MS,
      pollMs: CHANGES_POLL_MS,
      usageMs: USAGE_DRAIN_MS,
      claimEveryMs: CLAIM_EVERY_MS,
      claimIdleMs: CLAIM_IDLE_MS,
      blockMs: BLOCK_MS,
      ...deps.timings,
    }
  }

  /** Starts publishing and draining; Redis being down is retried (and logged) rather than thrown. */
  start(): this {
    if (!this.stopped) return this
    this.stopped = false
    if (this.d.leader) {
      this.every(this.t.beatMs, () => this.beat())
      this.every(this.t.pollMs, () => this.exclusive(() => (this.epoch ? this.publishChanges() : undefined)))
      this.every(this.t.usageMs, () => this.drainUsage())
      this.every(this.t.claimEveryMs, () => this.claim())
    } else {
      this.every(this.t.beatMs, () => this.watchEpoch())
    }
    this.loop = this.consume()
    return this
  }

  /** Stops the loops (waiting for work in progress) and closes the blocking connection. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.d.blocking.disconnect()
    await this.loop
    await Promise.allSettled([...this.running, ...this.replacing.values()])
  }

  /**
   * Told of a reader whose first pages may have changed: they are placed again on the feeds they were placed on.
   * Posts marked seen wait for the reader's next touch.
   *
   * @NOTE apps send seen posts in batches while the reader scrolls, and each placement after feedback makes an
   * overlay (a snapshot of its own, about 130 KB in Redis for a list of 1,000, kept for the snapshot TTL): seen
   * posts are lowered from the reader's next first page but one, rather than an overlay made every few seconds
   */
  readerChanged(did: string, what: 'mix' | 'feedback' | 'seen' = 'feedback', feed?: Feed): Promise<void> {
    if (this.stopped || what === 'seen') return Promise.resolve()
    const again = this.replaceSoon(did)
    // @NOTE a saved mix places the reader on its feed too, placed there before or not (their next first page there,
    // through any edge, is read from the new mix), and the save waits for it, at most MIX_PLACE_WAIT_MS
    const placed =
      what === 'mix' && feed
        ? again.then(async () => {
            const interests = ((await this.d.redis.hget(this.keys.reader(did), readerInterestsField(feed.uri))) ?? '').split(',').filter(Boolean)
            await this.placeReader(feed, did, interests)
          })
        : again
    const done = placed.catch((err) => this.d.log.warn({ err: (err as Error).message }, 'reader not placed again'))
    return what === 'mix'
      ? withTimeout(done, MIX_PLACE_WAIT_MS).catch(() => this.d.log.warn({ did }, 'a saved mix was answered before its placement was published'))
      : Promise.resolve()
  }

  /** Places a signed-in reader on a feed: publishes the snapshot their first page is read from and points them at it. */
  async placeReader(feed: Feed, did: string, interests: readonly string[] = []): Promise<number | null> {
    const snap = this.d.feeds.place(feed, did, interests)
    if (!(await this.ensureSnapshot(snap))) return null
    const x: string[] = []
    for (const a of this.d.readerFilter.blockedFor(did)) {
      if (x.length >= MAX_EXCLUDED_AUTHORS) break
      x.push(a)
    }
    const key = this.keys.reader(did)
    await this.d.redis
      .multi()
      .hset(key, readerFeedField(feed.uri), snap.id, readerInterestsField(feed.uri), interests.join(','), READER_EXCLUDED_FIELD, JSON.stringify(x))
      .expire(key, READER_TTL_S)
      .exec()
    return snap.id
  }

  /**
   * Points anonymous readers of a feed at its current list (published first). `quiet`: the primary's own
   * look (no cache metric, no refresh asked of a stale list), rather than a reader's touch.
   */
  async placeAnon(feed: Feed, quiet = false): Promise<number | null> {
    const snap = this.d.feeds.place(feed, null, [], Date.now(), { quiet })
    if (!(await this.ensureSnapshot(snap))) return null
    // @NOTE only the first serving process moves the pointer: another one may take an older list for the newest (for
    // up to LATEST_TTL_MS), and the first, remembering what it set, would not set it back
    if (this.d.leader && this.anonIds.get(feed.uri) !== snap.id) {
      await this.d.redis.hset(this.keys.anon, feed.uri, snap.id)
      this.anonIds.set(feed.uri, snap.id)
    }
    return snap.id
  }

  /** Places a reader again on every feed they are placed on (once per reader however often asked meanwhile). */
  private replaceSoon(did: string): Promise<void> {
    const queued = this.replacing.get(did)
    if (queued) return queued
    if (this.replacing.size >= MAX_REPLACING) return Promise.resolve()
    const p = (async () => {
      // @NOTE after the current turn: a batch of feedback stored a chunk at a time places the reader once
      await yieldToLoop()
      this.replacing.delete(did)
      if (this.stopped) return
      const have = await this.d.redis.hgetall(this.keys.reader(did))
      for (const [field, value] of Object.entries(have)) {
        if (!field.startsWith('f:') || !value) continue
        const feed = this.d.feeds.feed(field.slice(2))
        if (!feed) continue
        const interests = (have[readerInterestsField(feed.uri)] ?? '').split(',').filter(Boolean)
        await this.placeReader(feed, did, interests)
      }
    })()
    this.replacing.set(did, p)
    return p
  }

  /**
   * Makes sure `snap:<id>` is in Redis: published once, and again when placed after half its TTL (so a pointer
   * just set never names one about to expire; a pointer not set again may outlive its snapshot, and edges then
   * serve the anonymous list and touch), with the posts gone since it was built published as deletions first.
   * False when the snapshot is gone from the store.
   */
  private async ensureSnapshot(snap: SnapshotInfo, now = Date.now()): Promise<boolean> {
    const at = this.published.get(snap.id)
    if (at !== undefined && now - at < this.d.snapshotTtlMs / 2) return true
    const bound = this.d.pages.snapshotKey(snap.id)
    const list = bound && this.d.pages.storedListIfAny(snap.id)
    if (!bound || !list) {
      this.d.log.debug({ snapshot: snap.id }, 'snapshot gone before it was published')
      return false
    }
    // @NOTE items keep their places (ranks are positions, and cursors carry ranks): a post gone since the snapshot
    // was built (perhaps before `changes` began) goes to `changes`, as the primary's pages leave it out
    const gone: string[] = []
    const items = list.items.map((it): EdgeItem => {
      if (!this.d.pages.postExists(it.uri)) gone.push(it.uri)
      return [it.uri, it.context]
    })
    const body: EdgeSnapshot = { feed: bound.feed, key: bound.key, builtAt: snap.builtAt, checkedAt: list.checkedAt, items }
    const m = this.d.redis.multi()
    for (const uri of gone) m.xadd(this.keys.changes, 'MINID', '~', this.minId(now), '*', 'k', 'del', 'uri', uri)
    m.set(this.keys.snapshot(snap.id), JSON.stringify(body), 'PX', this.d.snapshotTtlMs)
    await m.exec()
    this.published.delete(snap.id)
    this.published.set(snap.id, now)
    if (this.published.size > MAX_PUBLISHED) this.published.delete(this.published.keys().next().value!)
    return true
  }

  /** `changes` entries older than this go: no snapshot published before it is still in Redis. */
  private minId(now: number): string {
    return `${Math.max(0, now - this.d.snapshotTtlMs - TRIM_MARGIN_MS)}-0`
  }

  /**
   * The leader's heartbeat: starts publishing (or starts over when `meta` is gone: Redis was emptied), says the
   * primary is alive, and moves the anonymous pointers to the lists anonymous readers are now served.
   */
  private async beat(): Promise<void> {
    const epoch = this.epoch && (await this.d.redis.hget(this.keys.meta, 'epoch'))
    if (!epoch) {
      if (this.epoch) this.d.log.warn('edge state gone from Redis (emptied?): publishing it again')
      await this.exclusive(() => this.begin())
    } else {
      if (epoch !== this.epoch) {
        // another primary on the same Redis and prefix started over: what it published is what counts
        this.d.log.warn({ epoch }, 'another primary publishes edge state under this prefix')
        this.forget(epoch)
      }
      await this.d.redis.hset(this.keys.meta, 'primary', Date.now())
    }
    for (const feed of this.d.feeds.feeds) await this.placeAnon(feed, true)
  }

  /** Other serving processes: forget what they published when the leader started over. */
  private async watchEpoch(): Promise<void> {
    const epoch = await this.d.redis.hget(this.keys.meta, 'epoch')
    if (epoch && epoch !== this.epoch) this.forget(epoch)
  }

  private forget(epoch: string | null): void {
    this.epoch = epoch
    this.published.clear()
    this.anonIds.clear()
  }

  /**
   * Starts publishing: `changes` continues from where `meta` says the last primary stopped, or (without `meta`,
   * or when the rows it names are gone) from the deletions still logged and the authors with a flag set.
   */
  private async begin(): Promise<void> {
    await this.ensureGroups()
    const meta = await this.d.redis.hgetall(this.keys.meta)
    const span = this.d.changes.deletionSpan()
    const delSeq = Number(meta.delseq)
    const consentAt = Number(meta.consentAt)
    const continues = meta.epoch && Number.isSafeInteger(delSeq) && delSeq <= span.last && delSeq >= span.first - 1 && Number.isFinite(consentAt)
    this.consentMemo.clear()
    this.consentVersion = -1
    if (continues) {
      this.delSeq = delSeq
      this.consentAt = consentAt
    } else {
      if (meta.epoch)
        this.d.log.warn({ delseq: meta.delseq, first: span.first, last: span.last }, 'deletions were logged that edges never saw: seeding them anew')
      // @NOTE every snapshot is published again from here on (this process remembers none), its gone posts with it:
      // the seed covers snapshots edges still hold from before
      this.delSeq = Math.max(0, span.first - 1, span.last - SEED_MAX)
      this.consentAt = this.d.changes.newestConsentAt()
      const flagged = this.d.changes.consentFlagged(SEED_MAX)
      for (let at = 0; at < flagged.length; at += CHANGES_CHUNK) {
        const m = this.d.redis.multi()
        if (at === 0) m.del(this.keys.consent)
        for (const [did, hide, nu] of flagged.slice(at, at + CHANGES_CHUNK)) {
          this.consentTo(m, did, hide, nu, Date.now())
          this.rememberConsent(did, `${hide}${nu}`)
        }
        await m.exec()
      }
    }
    const epoch = randomBytes(8).toString('hex')
    await this.d.redis.hset(this.keys.meta, {
      epoch,
      cursor: this.d.cursorSecret,
      primary: Date.now(),
      delseq: this.delSeq,
      consentAt: this.consentAt,
    })
    this.forget(epoch)
    this.d.log.info({ epoch, delseq: this.delSeq, continued: !!continues }, 'publishing for edge nodes')
    await this.publishChanges()
  }

  /** An author's consent flags to `changes` and to the `consent` hash, in the transaction `m`. */
  private consentTo(m: ReturnType<Redis['multi']>, did: string, hide: 0 | 1, nu: 0 | 1, now: number): void {
    m.xadd(this.keys.changes, 'MINID', '~', this.minId(now), '*', 'k', 'consent', 'did', did, 'hide', String(hide), 'nu', String(nu))
    if (hide || nu) m.hset(this.keys.consent, did, `${hide}${nu}`)
    else m.hdel(this.keys.consent, did)
  }

  private rememberConsent(did: string, code: string): void {
    if (this.consentMemo.size >= MAX_CONSENT_MEMO) this.consentMemo.clear()
    this.consentMemo.set(did, code)
  }

  /** Publishes the deletions and consent changes logged since the last look to `changes` (with `meta`'s marks, at once). */
  private async publishChanges(): Promise<void> {
    let budget = CHANGES_PER_POLL
    const version = this.d.changes.consentVersion()
    let consent: [string, 0 | 1, 0 | 1, number][] = []
    if (version !== this.consentVersion) {
      consent = this.d.changes
        .consentSince(Math.max(0, this.consentAt - CONSENT_MARGIN_MS), CHANGES_PER_POLL)
        .filter(([did, hide, nu]) => this.consentMemo.get(did) !== `${hide}${nu}`)
    }
    for (;;) {
      const dels = this.d.changes.deletionsSince(this.delSeq, Math.min(CHANGES_CHUNK, budget))
      if (!dels.length && !consent.length) break
      const now = Date.now()
      const m = this.d.redis.multi()
      for (const [, uri] of dels) m.xadd(this.keys.changes, 'MINID', '~', this.minId(now), '*', 'k', 'del', 'uri', uri)
      for (const [did, hide, nu] of consent) this.consentTo(m, did, hide, nu, now)
      const delSeq = dels.length ? dels[dels.length - 1][0] : this.delSeq
      const consentAt = consent.reduce((a, r) => Math.max(a, r[3]), this.consentAt)
      m.hset(this.keys.meta, { delseq: delSeq, consentAt })
      await m.exec()
      this.delSeq = delSeq
      this.consentAt = consentAt
      for (const [did, hide, nu] of consent) this.rememberConsent(did, `${hide}${nu}`)
      consent = []
      budget -= dels.length
      if (dels.length < CHANGES_CHUNK || budget <= 0) break
      await yieldToLoop()
    }
    this.consentVersion = version
  }

  /** Folds the usage edges counted into the store (the hash taken at once, so no count is added twice or lost to a race). */
  async drainUsage(): Promise<void> {
    const flat = (await this.d.redis.eval(TAKE_HASH, 1, this.keys.usage)) as string[]
    const entries: [string, number][] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const n = Number(flat[i + 1])
      if (flat[i].length <= MAX_AGENT_ID && Number.isSafeInteger(n) && n > 0 && n < MAX_USAGE_ITEMS) entries.push([flat[i], n])
    }
    if (!entries.length) return
    try {
      this.d.usage.addItems(entries)
    } catch (err) {
      // put back for the next drain
      const m = this.d.redis.multi()
      for (const [id, n] of entries) m.hincrby(this.keys.usage, id, n)
      await m.exec()
      throw err
    }
  }

  /**
   * Takes over the entries consumers that died took and never acknowledged: at once those of a process of this machine
   * that is gone (a primary killed and started again), else once they waited claimIdleMs.
   */
  private async claim(): Promise<void> {
    for (const stream of [this.keys.touch, this.keys.writes]) {
      await this.claimFromDeadHere(stream)
      let start = '0-0'
      for (let round = 0; round < 10; round++) {
        const [next, entries] = (await this.d.redis.xautoclaim(stream, EDGE_GROUP, this.consumer, this.t.claimIdleMs, start, 'COUNT', READ_COUNT)) as [
          string,
          StreamEntry[],
        ]
        if (entries.length) this.readPending = true
        if (next === '0-0') break
        start = next
      }
    }
  }

  /**
   * The entries of consumers named `<this host>:<pid>` whose process is gone, moved to this consumer (its pending
   * entries are read first), and those consumers removed. A consumer on another machine, or whose pid is alive (or
   * taken again by another process), waits for the idle-based claim.
   */
  private async claimFromDeadHere(stream: string): Promise<void> {
    const host = `${os.hostname()}:`
    const consumers = (await this.d.redis.xinfo('CONSUMERS', stream, EDGE_GROUP)) as unknown[][]
    for (const info of consumers) {
      const f = new Map<string, unknown>()
      for (let i = 0; i + 1 < info.length; i += 2) f.set(String(info[i]), info[i + 1])
      const name = String(f.get('name') ?? '')
      const pid = name.startsWith(host) ? Number(name.slice(host.length)) : Number.NaN
      if (name === this.consumer || !Number.isInteger(pid) || pid <= 0 || processAlive(pid)) continue
      for (let round = 0; round < 100; round++) {
        const pending = (await this.d.redis.xpending(stream, EDGE_GROUP, '-', '+', READ_COUNT, name)) as [string, ...unknown[]][]
        if (!pending.length) break
        await this.d.redis.xclaim(stream, EDGE_GROUP, this.consumer, 0, ...pending.map((e) => e[0]), 'JUSTID')
        this.readPending = true
      }
      await this.d.redis.xgroup('DELCONSUMER', stream, EDGE_GROUP, name)
      this.d.log.info({ stream, consumer: name }, 'took over the entries of a serving process that is gone')
    }
  }

  private async ensureGroups(): Promise<void> {
    for (const stream of [this.keys.touch, this.keys.writes]) {
      try {
        await this.d.redis.xgroup('CREATE', stream, EDGE_GROUP, '0', 'MKSTREAM')
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err
      }
    }
  }

  /** Reads `touch` and `writes` until stopped: this consumer's pending entries first, then new ones. */
  private async consume(): Promise<void> {
    let grouped = false
    let failures = 0
    while (!this.stopped) {
      try {
        if (!grouped) {
          await this.ensureGroups()
          grouped = true
        }
        const pending = this.readPending
        // @NOTE this consumer's pending entries (claimed from a dead one) are read with id 0, which never blocks
        const res = (await (pending
          ? this.d.blocking.xreadgroup('GROUP', EDGE_GROUP, this.consumer, 'COUNT', READ_COUNT, 'STREAMS', this.keys.touch, this.keys.writes, '0', '0')
          : this.d.blocking.xreadgroup(
              'GROUP',
              EDGE_GROUP,
              this.consumer,
              'COUNT',
              READ_COUNT,
              'BLOCK',
              this.t.blockMs,
              'STREAMS',
              this.keys.touch,
              this.keys.writes,
              '>',
              '>',
            ))) as [string, StreamEntry[]][] | null
        let n = 0
        for (const [stream, entries] of res ?? []) {
          if (!entries.length) continue
          n += entries.length
          const ids = entries.map((e) => e[0])
          if (stream === this.keys.touch) {
            await this.touched(entries)
            await this.d.redis.xack(stream, EDGE_GROUP, ...ids)
          } else {
            await this.written(entries)
            // @NOTE handled writes leave the stream (it would otherwise keep every body ever sent), and their size the
            // count edges bound the backlog by
            const size = entries.reduce((n, [, fields]) => n + (fieldsOf(fields).body?.length ?? 0), 0)
            await this.d.redis
              .multi()
              .xack(stream, EDGE_GROUP, ...ids)
              .xdel(stream, ...ids)
              .decrby(this.keys.writesSize, size)
              .exec()
          }
        }
        if (pending && n === 0) this.readPending = false
        failures = 0
      } catch (err) {
        if (this.stopped) break
        const msg = (err as Error).message
        if (/NOGROUP/.test(msg)) grouped = false
        else {
          this.d.log[failures++ ? 'debug' : 'warn']({ err: msg }, 'reading edge streams failed; retrying')
          await new Promise((r) => setTimeout(r, 1000))
        }
      }
    }
  }

  /** `touch` entries: each (reader, feed) placed once per batch, with the interests last sent. */
  private async touched(entries: StreamEntry[]): Promise<void> {
    const wanted = new Map<string, { feed: Feed; did: string; interests: string[] }>()
    for (const [id, fields] of entries) {
      const f = fieldsOf(fields)
      const feed = f.feed ? this.d.feeds.feed(f.feed) : undefined
      const did = f.did ?? ''
      if (!feed || (did && !DID_RE.test(did))) {
        this.d.log.warn({ id, feed: f.feed?.slice(0, 300) }, 'touch entry ignored: unknown feed or bad DID')
        continue
      }
      const interests = did ? knownTopics((f.int ?? '').slice(0, 1000).split(',')).slice(0, MAX_INTERESTS) : []
      wanted.set(`${did} ${feed.uri}`, { feed, did, interests })
    }
    await Promise.all(
      [...wanted.values()].map(async ({ feed, did, interests }) => {
        try {
          if (!did) return await this.placeAnon(feed)
          this.d.feeds.readerSeen(did)
          return await this.placeReader(feed, did, interests)
        } catch (err) {
          this.d.log.warn({ err: (err as Error).message, feed: feed.rkey }, 'touched reader not placed')
        }
      }),
    )
  }

  /** `writes` entries: interactions stored as feedback, then the reader placed again (their next page reflects them). */
  private async written(entries: StreamEntry[]): Promise<void> {
    for (const [id, fields] of entries) {
      try {
        const f = fieldsOf(fields)
        if (f.kind !== 'interactions') throw new Error(`unknown kind ${JSON.stringify(f.kind?.slice(0, 50))}`)
        if (!f.did || !DID_RE.test(f.did)) throw new Error('bad DID')
        if (!f.body || f.body.length > MAX_WRITE_BODY) throw new Error('missing or oversized body')
        const { items, feed } = await readInteractions(JSON.parse(f.body))
        let stored = 0
        for (let at = 0; at < items.length; at += INTERACTIONS_CHUNK) {
          if (at > 0) await yieldToLoop()
          stored += this.d.feeds.addFeedback(f.did, items.slice(at, at + INTERACTIONS_CHUNK), feed)
        }
        // the feedback stored asked for the reader to be placed again (readerChanged): done before the entry is acknowledged
        if (stored) await this.replacing.get(f.did)?.catch(() => {})
      } catch (err) {
        // @NOTE a bad entry is acknowledged all the same: kept, it would come back forever and hold up the ones after it
        this.d.log.warn({ id, err: (err as Error).message.slice(0, 300) }, 'write from an edge dropped')
      }
    }
  }

  /** Runs `fn` every `ms` (the next run `ms` after one ends) until stopped; failures are logged (once in a row as a warning). */
  private every(ms: number, fn: () => Promise<unknown> | unknown): void {
    let failing = false
    const run = () => {
      if (this.stopped) return
      const p = Promise.resolve()
        .then(fn)
        .then(() => {
          if (failing) this.d.log.info('edge publishing works again')
          failing = false
        })
        .catch((err) => {
          this.d.log[failing ? 'debug' : 'warn']({ err: (err as Error).message }, 'edge publishing failed; retrying')
          failing = true
        })
        .finally(() => {
          this.running.delete(p)
          if (this.stopped) return
          const t = setTimeout(() => {
            this.timers.delete(t)
            run()
          }, ms)
          t.unref()
          this.timers.add(t)
        })
      this.running.add(p)
    }
    run()
  }

  private exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const p = this.serial.then(fn)
    this.serial = p.catch(() => {})
    return p
  }
}

/** A stream entry's fields as an object (the last value of a repeated field counts). */
function fieldsOf(fields: string[] | null): Record<string, string | undefined> {
  const out: Record<string, string> = Object.create(null)
  if (fields) for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]] = fields[i + 1]
  return out
}

/** Whether a process with this pid exists on this machine (one of another user counts). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

import type { Redis } from 'ioredis'
import { edgeKeys, READER_EXCLUDED_FIELD, type EdgeSnapshot } from '../../contracts/edge.ts'
import type { Logger } from '../../logger.ts'
import { withTimeout } from '../../util/timeout.ts'
import { XrpcError } from '../errors.ts'

/** A published snapshot as an edge pages it: parallel arrays, the authors cut out of the URIs once. */
export interface EdgeList {
  id: number
  feed: string
  /** when it expires in Redis (ms since the epoch): past it, it is gone here too */
  expiresAt: number
  /** the list key cursors are bound to */
  key: string
  uris: string[]
  contexts: string[]
  authors: string[]
}

/** Where a signed-in reader's first pages are read from, as the primary last placed them. */
export interface ReaderPlacement {
  /** feed URI → snapshot id */
  feeds: Map<string, number>
  /** authors the reader must not be shown (blocks either way); null when none */
  excluded: ReadonlySet<string> | null
  /** `x` as read (parsed again only when it changes) */
  excludedJson?: string
}

/** How long the anon pointers, `meta` and a reader's placement are trusted: one read of each per second at most. */
export const POINTER_TTL_MS = 1000
/** The anon pointers are read again early (a pointer named a snapshot that is gone) at most this often. */
const RELOAD_MIN_MS = 100
/** Items of parsed snapshots kept in memory at most (the least recently used go first). */
export const MAX_CACHED_ITEMS = 100_000
/** Deleted URIs (and authors with a consent flag) remembered at most; past it the oldest deletions go (see bound()). */
export const MAX_CHANGES = 500_000
/** Signed-in readers whose placement is kept in memory at most. */
const MAX_READERS = 50_000
/** How long a snapshot id found missing is not asked for again. */
const GONE_MS = 1000
const MAX_GONE = 10_000
/** Entries read from `changes` per XREAD. */
const CHANGES_BATCH = 1000
/** How long one Redis read on a request's path may take before the request goes on without it (or fails). */
const READ_TIMEOUT_MS = 1000
/** The largest `x` (excluded authors, JSON) read: the primary caps the list at 10,000 DIDs. */
const MAX_EXCLUDED_JSON = 2_000_000

const authorOf = (uri: string) => {
  const end = uri.indexOf('/', 5)
  return end < 0 ? uri.slice(5) : uri.slice(5, end)
}

/** A snapshot's JSON as stored under `snap:<id>`, or null when it is not one. */
export function parseSnapshot(id: number, json: string, expiresAt = Infinity): EdgeList | null {
  let s: EdgeSnapshot
  try {
    s = JSON.parse(json) as EdgeSnapshot
  } catch {
    return null
  }
  if (!s || typeof s.feed !== 'string' || typeof s.key !== 'string' || !Array.isArray(s.items)) return null
  const n = s.items.length
  const uris = new Array<string>(n)
  const contexts = new Array<string>(n)
  const authors = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const it = s.items[i]
    const uri = Array.isArray(it) && typeof it[0] === 'string' ? it[0] : ''
    uris[i] = uri
    contexts[i] = Array.isArray(it) && typeof it[1] === 'string' ? it[1] : ''
    authors[i] = authorOf(uri)
  }
  return { id, feed: s.feed, expiresAt, key: s.key, uris, contexts, authors }
}

/**
 * What an edge node knows of the primary's published state (src/contracts/edge.ts), read from Redis and kept in
 * memory: the anonymous pointers and `meta` (read again at most every POINTER_TTL_MS, by the first request after),
 * each signed-in reader's placement (likewise, per reader), snapshots by id (immutable: parsed once, kept while
 * MAX_CACHED_ITEMS allows), and the deletions and consent flags of `changes`, followed on a connection of its own.
 * `version` moves with every change read, so pages made before it are made again.
 */
export class EdgeView {
  private readonly redis: Redis
  private readonly stream: Redis
  private readonly keys: ReturnType<typeof edgeKeys>
  private readonly log: Logger
  private readonly maxItems: number
  private readonly maxChanges: number
  /** deletions older than this cannot be in a live snapshot (the primary trims `changes` at the same age) */
  private readonly snapshotTtlMs: number

  private shared = { at: -Infinity, anon: new Map<string, number>(), cursor: undefined as string | undefined, primary: 0, epoch: '' }
  private sharedLoad: Promise<void> | null = null
  private readonly readers = new Map<string, { at: number; placement: ReaderPlacement }>()
  private readonly readerLoads = new Map<string, Promise<ReaderPlacement>>()
  private readonly lists = new Map<number, EdgeList>()
  private readonly listLoads = new Map<number, Promise<EdgeList | null>>()
  private readonly gone = new Map<number, number>()
  private cachedItems = 0

  /** deleted post URI → when (ms, from the stream entry id), oldest first */
  readonly deleted = new Map<string, number>()
  readonly hidden = new Set<string>()
  readonly noUnauth = new Set<string>()
  /** moves whenever a change is read: pages made at another version are made again */
  version = 0
  /** whether `changes` was read to its end once (pages are served only then) */
  caughtUp = false
  private lastId = '0'
  private stopped = false
  private follower: Promise<void> | null = null
  private warnedFull = false

  constructor(opts: {
    /** commands (short reads) */
    redis: Redis
    /** a connection of its own for the blocking reads of `changes` */
    stream: Redis
    queuePrefix: string
    log: Logger
    snapshotTtlMs: number
    maxItems?: number
    maxChanges?: number
  }) {
    this.redis = opts.redis
    this.stream = opts.stream
    this.keys = edgeKeys(opts.queuePrefix)
    this.log = opts.log
    this.snapshotTtlMs = opts.snapshotTtlMs
    this.maxItems = opts.maxItems ?? MAX_CACHED_ITEMS
    this.maxChanges = opts.maxChanges ?? MAX_CHANGES
  }

  /** Reads `changes` to its end (bounded by `timeoutMs`), then follows it until stop(). */
  async start(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs
    try {
      // @NOTE every flag set now, first: one set before the oldest entry `changes` keeps is in no entry (the entries
      // then bring the flags up to date, in order)
      await this.readConsent(end)
      while (!this.caughtUp && Date.now() < end) await this.readChanges(false)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot read the changes stream yet; pages wait for it')
    }
    this.follower = this.follow()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stream.disconnect()
    // @NOTE a read queued while ioredis waits to reconnect is never settled by disconnect(): waited for a while only
    let t: NodeJS.Timeout | undefined
    await Promise.race([this.follower, new Promise((r) => (t = setTimeout(r, 2000)))])
    clearTimeout(t)
  }

  /*
   * @NOTE what is in memory is answered without a promise (a request's path awaits only what it must read from
   * Redis): the methods below answer a value, or a promise of it when they read
   */

  /** The anonymous pointer of a feed (undefined: the primary has not published one). */
  anonPointer(feed: string, now = Date.now()): number | undefined | Promise<number | undefined> {
    if (now - this.shared.at < POINTER_TTL_MS) return this.shared.anon.get(feed)
    return this.loadShared().then(() => this.shared.anon.get(feed))
  }

  /** The secret cursors are signed with, as the primary published it. */
  cursorSecret(now = Date.now()): string | undefined | Promise<string | undefined> {
    if (now - this.shared.at < POINTER_TTL_MS) return this.shared.cursor
    return this.loadShared().then(() => this.shared.cursor)
  }

  /** What the primary last said: when it was alive (ms), and its epoch. */
  async primary(): Promise<{ beatAt: number; epoch: string }> {
    if (Date.now() - this.shared.at >= POINTER_TTL_MS) await this.loadShared()
    return { beatAt: this.shared.primary, epoch: this.shared.epoch }
  }

  /** Reads the anon pointers and `meta` again (a pointer named a snapshot that is gone), unless read in the last RELOAD_MIN_MS. */
  async reloadShared(now = Date.now()): Promise<void> {
    if (now - this.shared.at < RELOAD_MIN_MS) return
    await this.loadShared()
  }

  private loadShared(): Promise<void> {
    this.sharedLoad ??= (async () => {
      try {
        const [[e1, meta], [e2, anon]] = (await withTimeout(this.redis.multi().hgetall(this.keys.meta).hgetall(this.keys.anon).exec(), READ_TIMEOUT_MS)) as [
          [Error | null, Record<string, string>],
          [Error | null, Record<string, string>],
        ]
        if (e1 || e2) throw e1 ?? e2
        const pointers = new Map<string, number>()
        for (const [feed, id] of Object.entries(anon)) {
          const n = Number(id)
          if (Number.isSafeInteger(n) && n > 0) pointers.set(feed, n)
        }
        const epoch = meta.epoch ?? ''
        // @NOTE a new epoch: the primary republished everything (Redis was emptied): placements read before are void
        if (epoch !== this.shared.epoch && this.shared.epoch !== '') this.readers.clear()
        this.shared = { at: Date.now(), anon: pointers, cursor: meta.cursor || undefined, primary: Number(meta.primary) || 0, epoch }
      } catch (err) {
        // served from what was read before; asked again a second later
        this.shared.at = Date.now()
        this.log.warn({ err: (err as Error).message }, 'cannot read the published pointers; serving the last ones read')
      } finally {
        this.sharedLoad = null
      }
    })()
    return this.sharedLoad
  }

  /** A signed-in reader's placement (read at most once per POINTER_TTL_MS); none when the primary has not placed them. */
  reader(did: string, now = Date.now()): ReaderPlacement | Promise<ReaderPlacement> {
    const hit = this.readers.get(did)
    if (hit && now - hit.at < POINTER_TTL_MS) return hit.placement
    let load = this.readerLoads.get(did)
    if (!load) {
      load = this.loadReader(did, hit?.placement).finally(() => this.readerLoads.delete(did))
      this.readerLoads.set(did, load)
    }
    return load
  }

  /** Forgets a reader's placement as read: their next request reads it again (a write through the primary moved it). */
  forgetReader(did: string): void {
    this.readers.delete(did)
  }

  private async loadReader(did: string, last: ReaderPlacement | undefined): Promise<ReaderPlacement> {
    let placement: ReaderPlacement
    try {
      const fields = await withTimeout(this.redis.hgetall(this.keys.reader(did)), READ_TIMEOUT_MS)
      const feeds = new Map<string, number>()
      let excluded: Set<string> | null = null
      for (const [name, value] of Object.entries(fields)) {
        if (name.startsWith('f:')) {
          const n = Number(value)
          if (Number.isSafeInteger(n) && n > 0) feeds.set(name.slice(2), n)
        } else if (name === READER_EXCLUDED_FIELD && value.length > 2 && value.length <= MAX_EXCLUDED_JSON) {
          if (value === last?.excludedJson) {
            excluded = last.excluded as Set<string> | null
            continue
          }
          try {
            const list = JSON.parse(value) as unknown
            if (Array.isArray(list)) excluded = new Set(list.filter((a): a is string => typeof a === 'string'))
          } catch {
            this.log.warn({ did }, 'a reader placement has a malformed excluded list; ignored')
          }
        }
      }
      const x = fields[READER_EXCLUDED_FIELD]
      placement = { feeds, excluded: excluded?.size ? excluded : null, ...(x && x.length <= MAX_EXCLUDED_JSON ? { excludedJson: x } : {}) }
    } catch (err) {
      this.log.debug({ err: (err as Error).message, did }, 'cannot read a reader placement; serving the last one read')
      placement = last ?? { feeds: new Map(), excluded: null }
    }
    if (this.readers.size >= MAX_READERS) {
      // the least recently read tenth goes (a Map keeps insertion order; a reader read again is inserted again)
      let drop = MAX_READERS / 10
      for (const k of this.readers.keys()) {
        this.readers.delete(k)
        if (--drop <= 0) break
      }
    }
    this.readers.delete(did)
    this.readers.set(did, { at: Date.now(), placement })
    return placement
  }

  /** A published snapshot by id (parsed once and kept while the item budget allows), or null when it is gone. */
  snapshot(id: number, now = Date.now()): EdgeList | null | Promise<EdgeList | null> {
    const hit = this.lists.get(id)
    if (hit && hit.expiresAt <= now) {
      // @NOTE gone from Redis when its TTL ran out, so gone here too: a cursor into it ends paging, as on the primary
      this.lists.delete(id)
      this.cachedItems -= hit.uris.length
    } else if (hit) {
      if (this.lists.size > 1) {
        this.lists.delete(id)
        this.lists.set(id, hit)
      }
      return hit
    }
    const goneAt = this.gone.get(id)
    if (goneAt !== undefined && now - goneAt < GONE_MS) return null
    let load = this.listLoads.get(id)
    if (!load) {
      load = this.loadSnapshot(id).finally(() => this.listLoads.delete(id))
      this.listLoads.set(id, load)
    }
    return load
  }

  private async loadSnapshot(id: number): Promise<EdgeList | null> {
    const key = this.keys.snapshot(id)
    const at = Date.now()
    let json: string | null
    let ttl: number
    try {
      const [[e1, j], [e2, t]] = (await withTimeout(this.redis.multi().get(key).pttl(key).exec(), READ_TIMEOUT_MS)) as [
        [Error | null, string | null],
        [Error | null, number],
      ]
      if (e1 || e2) throw e1 ?? e2
      json = j
      ttl = t
    } catch (err) {
      this.log.warn({ err: (err as Error).message, id }, 'cannot read a published list')
      throw new XrpcError(503, 'NotReady', 'this edge node cannot read the published lists from Redis right now; try again in a moment')
    }
    const list = json === null ? null : parseSnapshot(id, json, ttl >= 0 ? at + ttl : Infinity)
    if (!list) {
      if (json !== null) this.log.warn({ id }, 'a published snapshot is malformed; treated as gone')
      if (this.gone.size >= MAX_GONE) this.gone.clear()
      this.gone.set(id, Date.now())
      return null
    }
    this.lists.set(id, list)
    this.cachedItems += list.uris.length
    // @NOTE the least recently used go first; the one just read stays even when it alone is over the budget
    for (const [old, l] of this.lists) {
      if (this.cachedItems <= this.maxItems || this.lists.size <= 1) break
      this.lists.delete(old)
      this.cachedItems -= l.uris.length
    }
    return list
  }

  /** Figures for the health check. */
  figures(): { snapshots: number; items: number; readers: number; deleted: number; hidden: number; noUnauth: number; changesCaughtUp: boolean } {
    return {
      snapshots: this.lists.size,
      items: this.cachedItems,
      readers: this.readers.size,
      deleted: this.deleted.size,
      hidden: this.hidden.size,
      noUnauth: this.noUnauth.size,
      changesCaughtUp: this.caughtUp,
    }
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.readChanges(true)
      } catch (err) {
        if (this.stopped) break
        this.log.warn({ err: (err as Error).message }, 'reading the changes stream failed; again in a second')
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
  }

  /** Reads the `consent` hash (every author with a flag set), a batch at a time. */
  private async readConsent(end: number): Promise<void> {
    let cursor = '0'
    do {
      const [next, kv] = await withTimeout(this.stream.hscan(this.keys.consent, cursor, 'COUNT', 1000), Math.max(100, end - Date.now()))
      cursor = next
      for (let i = 0; i + 1 < kv.length; i += 2) {
        this.flag(this.hidden, kv[i], kv[i + 1][0] === '1')
        this.flag(this.noUnauth, kv[i], kv[i + 1][1] === '1')
      }
    } while (cursor !== '0')
  }

  /** One XREAD of `changes` after the last entry read (blocking up to a second when `block`). */
  private async readChanges(block: boolean): Promise<void> {
    const key = this.keys.changes
    const read = block
      ? this.stream.xread('COUNT', CHANGES_BATCH, 'BLOCK', 1000, 'STREAMS', key, this.lastId)
      : withTimeout(this.stream.xread('COUNT', CHANGES_BATCH, 'STREAMS', key, this.lastId), 5000)
    const res = await read
    const entries = res?.[0]?.[1] ?? []
    if (entries.length) this.apply(entries)
    if (entries.length < CHANGES_BATCH && !this.caughtUp) {
      this.caughtUp = true
      this.log.info({ deleted: this.deleted.size, hidden: this.hidden.size, noUnauth: this.noUnauth.size }, 'changes stream read')
    }
  }

  /** Applies entries of `changes`: deletions and consent flags. */
  apply(entries: [string, string[]][]): void {
    for (const [id, fields] of entries) {
      this.lastId = id
      let k = ''
      let uri = ''
      let did = ''
      let hide = ''
      let nu = ''
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const v = fields[i + 1]
        switch (fields[i]) {
          case 'k':
            k = v
            break
          case 'uri':
            uri = v
            break
          case 'did':
            did = v
            break
          case 'hide':
            hide = v
            break
          case 'nu':
            nu = v
            break
        }
      }
      if (k === 'del' && uri) {
        this.deleted.delete(uri)
        this.deleted.set(uri, Number(id.slice(0, id.indexOf('-'))) || Date.now())
      } else if (k === 'consent' && did) {
        this.flag(this.hidden, did, hide === '1')
        this.flag(this.noUnauth, did, nu === '1')
      }
    }
    this.version++
    if (this.deleted.size > this.maxChanges) this.bound()
  }

  private flag(set: Set<string>, did: string, on: boolean): void {
    if (!on) set.delete(did)
    else if (set.size < this.maxChanges) set.add(did)
    else if (!this.warnedFull) {
      this.warnedFull = true
      this.log.error({ max: this.maxChanges }, 'too many authors with a consent flag to remember; new ones are not honoured on this edge')
    }
  }

  /**
   * Keeps the deleted URIs under the bound: first those older than any live snapshot (the primary trims them from
   * the stream at that age), then, if that is not enough, the oldest, until a tenth is free.
   */
  private bound(now = Date.now()): void {
    const before = this.deleted.size
    const cutoff = now - this.snapshotTtlMs
    for (const [uri, at] of this.deleted) {
      if (at >= cutoff) break
      this.deleted.delete(uri)
    }
    if (this.deleted.size > this.maxChanges) {
      for (const uri of this.deleted.keys()) {
        if (this.deleted.size <= this.maxChanges * 0.9) break
        this.deleted.delete(uri)
      }
      this.log.warn({ max: this.maxChanges }, 'more recent deletions than an edge remembers: the oldest were forgotten')
    }
    this.log.info({ before, after: this.deleted.size }, 'old deletions forgotten')
  }
}

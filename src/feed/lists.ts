import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import { withoutAuthors } from '../rank/exclude-authors.ts'
import {
  LIKES,
  NOT_LOOKED_UP,
  REPOSTS,
  TIME,
  cellOf,
  columnCode,
  figuresOf,
  gather,
  grown,
  mergeNewest,
  newerFirst,
  parseList,
  positionOf,
  survivors,
  type CachedPost,
  type CandidateList,
} from '../rank/columns.ts'
import { encodeFeedContext } from '../rank/feed-context.ts'
import type { ResolvedMix } from '../rank/mix.ts'
import { DROP_CODE, rankCandidates, type ScoreColumn } from '../rank/rank.ts'
import { DEFAULT_MAX_INSTANCES, type AgentHost, type AgentInstance } from '../score/host.ts'
import { DROP, scoresColumns, type AgentPost, type PostColumns, type SubscriberContext } from '../score/sdk.ts'
import type { CountRow, PostRow } from '../store/candidates.ts'
import type { ListItem, SnapshotInfo } from '../store/snapshots.ts'
import type { CandidateStore, ScoreStore } from './ports.ts'
import type { SnapshotPages } from './snapshot-pages.ts'

/** What ListBuilders keep in memory, shared by every ListBuilder on one candidate store (one connection). */
interface Memory {
  posts: Map<number, CachedPost>
  /** a small number per agent instance key, for CachedPost.scores and lists' columns (least recently used first) */
  slots: Map<string, number>
  /** the build that last used each slot */
  slotBuild: Map<number, number>
  /** slot numbers given up (their instance was evicted), to be used again */
  freeSlots: number[]
  builds: number
  /** the largest candidate list of recent builds (decays), which sizes the cache of posts */
  maxRows: number
  /** the largest post id ever cached: a changed post past it was never read, so it is not looked up */
  maxId: number
  /** posts some list holds (`lists` not 0): they cannot be evicted */
  held: number
  /**
   * posts as they were cached or left a list, oldest first, each with its `used` then (an entry whose post was used
   * again since is stale): what eviction takes from, least recently used first, without a pass over the cache
   */
  idle: { posts: CachedPost[]; used: number[]; head: number }
  /** candidate lists by `${windowHours}:${max}` */
  lists: Map<string, CandidateList>
  /** the bits lists hold (CandidateList.bit), one each */
  listBits: number
  /**
   * per static instance (by key), the share of the posts it was asked about that it dropped, in its latest build:
   * the instances that drop most are asked first, and the others only about the posts still in
   */
  dropShare: Map<string, number>
}

const memories = new WeakMap<CandidateStore, Memory>()

/**
 * posts no list holds are kept up to this share of the largest recent candidate list (the cache as a whole may hold
 * MIN_CACHED_POSTS in any case): what a list takes up again after deletions, or a new list of another window reads
 */
const SPARE_POSTS_PER_CANDIDATE = 0.5
export const MIN_CACHED_POSTS = 20_000
/** posts a preview scores with one static agent between two turns of the event loop */
const PREVIEW_CHUNK = 200
/** a candidate list no build used for this long is dropped (its posts may then be evicted) */
const LIST_IDLE_MS = 10 * 60_000
/** past this many changes per candidate, reading the list again is cheaper than reading the changes */
const CHANGES_PER_CANDIDATE = 4
/** post ids per read of whole posts or counts (one JSON array each) */
const IDS_PER_READ = 10_000
/** new posts read as one range of the table from this many on (fewer are read by id) */
const RANGE_READ_MIN = 64
/**
 * candidate lists kept at once (one bit each in a post's `lists`, within a small integer); past it the least recently
 * used list is dropped, to be read again when next used. A list is one window and size (feeds sharing both share it).
 */
export const MAX_LISTS = 30

/**
 * Builds a feed's ranked lists: reads its candidates, gets their static
 * scores (stored, or computed by running the agents), runs the other
 * agents and ranks, and stores the result as a snapshot.
 *
 * In memory (per candidate store): parsed candidate posts by id with the
 * static scores already looked up, and per feed window the newest
 * candidates, kept current from the change log (`post_changes`), so a
 * rebuild reads only what changed since the last one.
 */
export class ListBuilder {
  private readonly candidatesStore: CandidateStore
  private readonly scores: ScoreStore
  private readonly pages: SnapshotPages
  private readonly host: AgentHost
  private readonly log: Logger
  private readonly cacheSize: number
  /** instances with a slot (a column in every candidate list, a score in every cached post) at most */
  private readonly maxSlots: number
  private readonly mem: Memory

  /** whether ranking may call an agent in this process (otherwise only its stored scores count) */
  private readonly mayRun: (inst: AgentInstance) => boolean

  constructor(
    stores: { candidates: CandidateStore; scores: ScoreStore; pages: SnapshotPages },
    host: AgentHost,
    log: Logger,
    opts: { cacheSize: number; mayRun?: (inst: AgentInstance) => boolean; agentInstances?: number },
  ) {
    this.candidatesStore = stores.candidates
    this.scores = stores.scores
    this.pages = stores.pages
    this.host = host
    this.log = log
    this.mayRun = opts.mayRun ?? (() => true)
    this.cacheSize = opts.cacheSize
    this.maxSlots = opts.agentInstances ?? DEFAULT_MAX_INSTANCES
    let mem = memories.get(stores.candidates)
    if (!mem) {
      mem = {
        posts: new Map(),
        slots: new Map(),
        slotBuild: new Map(),
        freeSlots: [],
        builds: 0,
        maxRows: 0,
        maxId: 0,
        held: 0,
        idle: { posts: [], used: [], head: 0 },
        lists: new Map(),
        listBits: 0,
        dropShare: new Map(),
      }
      memories.set(stores.candidates, mem)
    }
    this.mem = mem
  }

  /** Posts kept parsed in memory for ranking (shared by every ListBuilder on this connection). */
  cachedPosts(): number {
    return this.mem.posts.size
  }

  /** False when ranking here leaves out an agent of the mix (then a refresh worker should build the list too). */
  ranksFully(mix: ResolvedMix): boolean {
    return mix.entries.every((e) => this.mayRun(e.inst))
  }

  /** Ranks the feed's candidates for a mix (nothing stored): the items with their attribution. */
  rank(feed: Feed, mix: ResolvedMix, now = Date.now(), subscriber?: SubscriberContext, limit = this.cacheSize): ListItem[] {
    return this.rankAt(feed, mix, now, subscriber, limit).items
  }

  /**
   * A preview: the mix ranked over at most `maxCandidates` of the feed's newest candidates, leaving nothing behind
   * (no slot, column or score kept, nothing saved). Static agents run here when they may (else their stored scores
   * are read), PREVIEW_CHUNK posts at a time; `pause` is awaited before each chunk and each other agent, so a preview
   * holds the event loop for one such step at a time.
   */
  async preview(
    feed: Feed,
    mix: ResolvedMix,
    opts: { limit: number; maxCandidates: number; pause: () => Promise<void>; now?: number; subscriber?: SubscriberContext },
  ): Promise<ListItem[]> {
    const now = opts.now ?? Date.now()
    const { list } = this.candidates(feed, now)
    // @NOTE copied: the shared list may change while this preview waits its turns
    const all = list.items.slice(0, Math.min(list.items.length, opts.maxCandidates)).map((c) => c.post)
    const fixed = new Map<number, Float64Array>()
    for (const [j, e] of mix.entries.entries()) {
      if (!e.inst.dynamic) fixed.set(j, await this.previewStatic(e.inst, all, now, opts.pause))
    }
    const keep = survivors(all.length, [...fixed.values()])
    const posts = keep ? Array.from(keep, (i) => all[i]) : all
    const m = posts.length
    const columns: ScoreColumn[] = []
    for (const [j, e] of mix.entries.entries()) {
      const col = fixed.get(j)
      let scores: Float64Array
      if (col) scores = keep ? gather(col, keep) : col
      else if (!this.mayRun(e.inst)) scores = new Float64Array(m).fill(NaN)
      else {
        await opts.pause()
        scores = (scoresColumns(e.inst.def) && this.host.runColumns(e.inst, figuresOf(posts), now)) || this.host.runColumn(e.inst, posts, now, opts.subscriber)
      }
      columns.push({ label: e.label, weight: e.weight, scores })
    }
    await opts.pause()
    return rankCandidates({ length: m, at: (i) => posts[i] }, columns, opts.limit).map((it) => ({
      uri: it.uri,
      score: it.score,
      context: encodeFeedContext({ fingerprint: mix.fingerprint, contributions: it.contributions, feed: feed.rkey }),
    }))
  }

  /** A static instance's scores for a preview's posts, as ranking reads them: computed here, or read as stored; nothing kept. */
  private async previewStatic(inst: AgentInstance, posts: AgentPost[], now: number, pause: () => Promise<void>): Promise<Float64Array> {
    const col = new Float64Array(posts.length).fill(NaN)
    if (this.runsHere(inst)) {
      // @NOTE a static agent scores each post alone, so its posts can be taken in chunks
      for (let i = 0; i < posts.length; i += PREVIEW_CHUNK) {
        await pause()
        col.set(this.host.runColumn(inst, posts.slice(i, i + PREVIEW_CHUNK), now), i)
      }
      return col
    }
    await pause()
    const at = new Map(posts.map((p, i) => [p.uri, i]))
    for (const [uri, score] of this.scores.instanceScores(inst.key, JSON.stringify(posts.map((p) => p.uri)))) {
      const i = at.get(uri)
      if (i !== undefined) col[i] = score === null ? DROP_CODE : score
    }
    return col
  }

  /** rank(), and the post_deletions row its candidates were read at (deletions past it may concern them). */
  private rankAt(
    feed: Feed,
    mix: ResolvedMix,
    now: number,
    subscriber: SubscriberContext | undefined,
    limit: number,
  ): { items: ListItem[]; deletionSeq: number } {
    const { list, deletionSeq } = this.candidates(feed, now)
    // static columns first: a post any of them drops is out whatever the rest say, so the rest only see the others
    const fixed = new Map<number, Float64Array>()
    const dropped = new Uint8Array(list.items.length)
    // @NOTE the ones that dropped most last time first: each later one is asked only about the posts still in (a topic
    // filter keeps a fraction of the posts; the other static agents then score that fraction)
    const shares = this.mem.dropShare
    const order = mix.entries.flatMap((e, j) => (e.inst.dynamic ? [] : [j]))
    order.sort((a, b) => (shares.get(mix.entries[b].inst.key) ?? 0) - (shares.get(mix.entries[a].inst.key) ?? 0) || a - b)
    for (const j of order) fixed.set(j, this.staticScores(mix.entries[j].inst, list, now, dropped))
    // consent and blocks come before any agent: an excluded author's post is never a candidate
    const keep = withoutAuthors(
      fixed.size ? undropped(dropped) : null,
      list.items.length,
      (i) => list.items[i].post.author,
      this.candidatesStore.excluder(subscriber?.did ?? null),
    )
    const m = keep ? keep.length : list.items.length
    // @NOTE the survivors' post objects only when an agent reads them: agents that score columns, and ranking itself
    // (which reads only ties and the top), need not touch every post
    let posts: AgentPost[] | null = null
    const postsNow = () => (posts ??= keep ? Array.from(keep, (i) => list.items[i].post) : list.items.map((c) => c.post))
    let figures: PostColumns | null = null
    const figuresNow = (): PostColumns => {
      if (figures) return figures
      const [time, likes, reposts] = [TIME, LIKES, REPOSTS].map((slot) => {
        const col = this.figureColumn(list, slot)
        return keep ? gather(col, keep) : col.subarray(0, m)
      })
      return (figures = { length: m, createdAt: time, likeCount: likes, repostCount: reposts })
    }
    const scoresOf = (inst: AgentInstance, j: number): Float64Array => {
      const col = fixed.get(j)
      if (col) return keep ? gather(col, keep) : col
      // @NOTE an agent this process may not run (sandboxed, in the serving process) has no opinion here
      if (!this.mayRun(inst)) return new Float64Array(m).fill(NaN)
      return (scoresColumns(inst.def) && this.host.runColumns(inst, figuresNow(), now)) || this.host.runColumn(inst, postsNow(), now, subscriber)
    }
    const columns: ScoreColumn[] = mix.entries.map((e, j) => ({ label: e.label, weight: e.weight, scores: scoresOf(e.inst, j) }))
    const view = { length: m, at: (i: number) => list.items[keep ? keep[i] : i]?.post }
    const items = rankCandidates(view, columns, limit).map((it) => ({
      uri: it.uri,
      score: it.score,
      context: encodeFeedContext({ fingerprint: mix.fingerprint, contributions: it.contributions, feed: feed.rkey }),
    }))
    return { items, deletionSeq }
  }

  /**
   * The feed's candidates: the newest `maxCandidates` posts of its window,
   * newest first, with current counts. Read whole the first time (and after
   * long idleness), then kept current from the change log; posts not seen
   * before are read in one query. One read transaction, so the list, the
   * counts and the deletion row returned agree.
   */
  private candidates(feed: Feed, now: number): { list: CandidateList; deletionSeq: number } {
    const mem = this.mem
    const build = ++mem.builds
    const since = now - feed.windowHours * 3_600_000
    const max = feed.maxCandidates
    const key = `${feed.windowHours}:${max}`
    const store = this.candidatesStore
    const { list, deletionSeq } = store.consistently(() => {
      const [first, last] = store.changeSpan()
      const seq = last ?? 0
      let list = mem.lists.get(key)
      const behind = list ? seq - list.seq : 0
      // @NOTE a gap (rows trimmed before this list read them) or a long backlog: read the list again
      if (!list || (first !== null && first > list.seq + 1) || behind < 0 || behind > CHANGES_PER_CANDIDATE * max) {
        if (list) this.dropList(key, list)
        list = { max, items: [], bit: this.listBit(), seq, full: false, usedAt: now, cols: new Map() }
        this.fill(list, store.newest(since, max), build)
        list.full = list.items.length >= max
        mem.lists.set(key, list)
      } else if (behind > 0) {
        this.applyChanges(list, store.changedIds(list.seq), since, build)
        list.seq = seq
      }
      this.trim(list, since, build)
      return { list, deletionSeq: store.lastDeletion() }
    })
    list.usedAt = now
    // @NOTE posts in a list are never evicted, so they are not marked used here (50,000 writes to scattered objects);
    // a post is marked when it leaves a list
    for (const [k, l] of mem.lists) if (now - l.usedAt > LIST_IDLE_MS) this.dropList(k, l)
    this.evict(build, list.items.length)
    return { list, deletionSeq }
  }

  /** Adds rows (newest first, none of them in the list yet) to the end of a list. */
  private fill(list: CandidateList, rows: CountRow[], build: number): void {
    const got = this.load(rows, build)
    const from = list.items.length
    for (const c of got) {
      list.items.push(c)
      this.hold(c, list)
    }
    for (const [slot, col] of list.cols) {
      const out = grown(col, list.items.length, from)
      for (let i = from; i < list.items.length; i++) out[i] = cellOf(list.items[i], slot)
      list.cols.set(slot, out)
    }
  }

  /** The cached posts of rows (in their order; gone ones left out), reading the ones not cached yet, with the rows' counts. */
  private load(rows: CountRow[], build: number): CachedPost[] {
    const mem = this.mem
    const missing: number[] = []
    for (const r of rows) if (r[1] !== null && !mem.posts.has(r[0])) missing.push(r[0])
    // @NOTE in id order: new posts sit together at the end of the table
    missing.sort((a, b) => a - b)
    for (let i = 0; i < missing.length; i += IDS_PER_READ) {
      for (const r of this.candidatesStore.postsById(JSON.stringify(missing.slice(i, i + IDS_PER_READ)))) this.cache(r, build)
    }
    const out: CachedPost[] = []
    for (const [id, createdAt, likes, reposts] of rows) {
      const c = createdAt === null ? undefined : mem.posts.get(id)
      if (!c) continue
      c.post.likeCount = likes
      c.post.repostCount = reposts
      c.used = build
      out.push(c)
    }
    return out
  }

  /** Keeps a post read whole, to be put in a list by the caller. */
  private cache(r: PostRow, build: number): CachedPost {
    const c: CachedPost = {
      id: r[0],
      post: {
        uri: r[1],
        author: r[2],
        createdAt: r[3],
        text: r[4],
        langs: parseList(r[5]),
        tags: parseList(r[6]),
        labels: parseList(r[7]),
        embed: r[8],
        quote: r[9],
        replyRoot: r[10],
        replyParent: r[11],
        likeCount: r[12],
        repostCount: r[13],
      },
      scores: [],
      used: build,
      lists: 0,
    }
    // @NOTE not queued for eviction: every caller puts it in a list at once (it is queued when it leaves one)
    this.mem.posts.set(c.id, c)
    if (c.id > this.mem.maxId) this.mem.maxId = c.id
    return c
  }

  /**
   * Applies logged changes (the ids of the posts that changed, in log order) to a list: counts, deletions, new
   * posts. Each post is read once however often it was logged: the counts of posts already in memory, the whole
   * row of new ones, and only of those in reach (in the window, and before a full list's tail).
   */
  private applyChanges(list: CandidateList, changed: number[], since: number, build: number): void {
    const mem = this.mem
    const store = this.candidatesStore
    const tail = list.items[list.items.length - 1]
    // @NOTE a full list only takes posts that sort before its tail: older ones were never in reach
    const inReach = (createdAt: number, id: number) =>
      createdAt >= since && (!list.full || !tail || createdAt > tail.post.createdAt || (createdAt === tail.post.createdAt && id > tail.id))
    // each post once, in id order; posts past the largest id ever cached were never read (no lookup), and sit
    // together at the end of the table
    const seen: number[] = []
    const unseen: number[] = []
    for (const id of changed) (id > mem.maxId ? unseen : seen).push(id)
    const bit = list.bit
    /** in the list, or kept in memory and in reach: only their counts are read */
    const known: number[] = []
    /** neither: read whole when in reach */
    const unknown: number[] = []
    for (const id of uniqueAscending(seen)) {
      const c = mem.posts.get(id)
      if (!c) unknown.push(id)
      else if ((c.lists & bit) !== 0 || inReach(c.post.createdAt, id)) known.push(id)
    }
    const newest = uniqueAscending(unseen)
    const gone = new Set<number>()
    const fresh: CachedPost[] = []
    let likeCol = list.cols.get(LIKES)
    let repostCol = list.cols.get(REPOSTS)
    for (let i = 0; i < known.length; i += IDS_PER_READ) {
      const chunk = known.slice(i, i + IDS_PER_READ)
      const rows = store.countsById(JSON.stringify(chunk))
      // @NOTE both in id order: a post of the chunk without a row is gone
      let r = 0
      for (const id of chunk) {
        const row = r < rows.length && rows[r][0] === id ? rows[r++] : undefined
        const c = mem.posts.get(id)!
        const held = (c.lists & bit) !== 0
        if (!row) {
          if (held) gone.add(id)
          continue
        }
        c.post.likeCount = row[1]
        c.post.repostCount = row[2]
        if (!held) {
          c.used = build
          fresh.push(c)
          continue
        }
        const at = likeCol ? positionOf(list, c) : -1
        if (at >= 0) {
          likeCol![at] = row[1]
          repostCol![at] = row[2]
        } else if (likeCol) {
          // @NOTE cannot happen while the list keeps its order; should it, the columns are made again from the posts
          this.log.warn({ post: id }, 'a candidate list lost its order; its columns of counts are rebuilt')
          for (const slot of [TIME, LIKES, REPOSTS]) list.cols.delete(slot)
          likeCol = repostCol = undefined
        }
      }
    }
    const floor = list.full && tail ? Math.max(since, tail.post.createdAt) : since
    const take = (row: PostRow) => {
      if (inReach(row[3], row[0])) fresh.push(this.cache(row, build))
    }
    for (let i = 0; i < unknown.length; i += IDS_PER_READ) {
      for (const row of store.postsById(JSON.stringify(unknown.slice(i, i + IDS_PER_READ)), floor)) take(row)
    }
    this.readNewest(newest, floor, take)
    if (gone.size) {
      const cols = [...list.cols.values()]
      const items = list.items
      let w = 0
      for (let r = 0; r < items.length; r++) {
        const c = items[r]
        if (gone.has(c.id)) {
          this.release(c, list, build)
          continue
        }
        if (w !== r) {
          items[w] = c
          for (const col of cols) col[w] = col[r]
        }
        w++
      }
      items.length = w
    }
    if (fresh.length) {
      const added = fresh.sort(newerFirst)
      for (const c of added) this.hold(c, list)
      mergeNewest(list, added)
    }
    // deletions left a full list short: the posts just past its tail move up
    if (list.full && list.items.length < list.max) {
      const last = list.items[list.items.length - 1]
      const before = last ? last.post.createdAt : Number.MAX_SAFE_INTEGER
      const ties = last ? list.items.filter((c) => c.post.createdAt === before).length : 0
      const need = list.max - list.items.length
      const rows2 = this.candidatesStore.older(since, before, need + ties).filter((r) => ((mem.posts.get(r[0])?.lists ?? 0) & bit) === 0)
      this.fill(list, rows2.slice(0, need), build)
      if (list.items.length < list.max) list.full = false
    }
  }

  /**
   * Reads whole the posts of `ids` (ascending, none ever cached) created at `floor` or later, passing each to `take`.
   * New posts are rows next to each other: a run of ids dense enough is read as one range of the table (a seek per
   * id through a JSON list of them cost about a fifth more), skipping the rows of the range not asked for.
   */
  private readNewest(ids: Float64Array, floor: number, take: (row: PostRow) => void): void {
    const store = this.candidatesStore
    let i = 0
    while (i < ids.length) {
      // the longest run from ids[i] whose span is at most twice its length (and at most IDS_PER_READ ids)
      let j = i + 1
      while (j < ids.length && j - i < IDS_PER_READ && ids[j] - ids[i] < 2 * (j - i + 1)) j++
      if (j - i >= RANGE_READ_MIN) {
        let k = i
        for (const row of store.postsInRange(ids[i], ids[j - 1], floor)) {
          while (k < j && ids[k] < row[0]) k++
          if (k < j && ids[k] === row[0]) take(row)
        }
      } else {
        for (const row of store.postsById(JSON.stringify(Array.from(ids.subarray(i, j))), floor)) take(row)
      }
      i = j
    }
  }

  /** Drops posts that left the window and cuts the list to its size. */
  private trim(list: CandidateList, since: number, build: number): void {
    let end = list.items.length
    while (end > 0 && list.items[end - 1].post.createdAt < since) end--
    // @NOTE everything past a post that left the window is older still: nothing of the window lies past the tail now
    if (end < list.items.length) list.full = false
    if (end > list.max) {
      end = list.max
      list.full = true
    }
    if (end === list.items.length) return
    for (let i = end; i < list.items.length; i++) this.release(list.items[i], list, build)
    list.items.length = end
  }

  private dropList(key: string, list: CandidateList): void {
    const build = this.mem.builds
    for (const c of list.items) this.release(c, list, build)
    this.mem.lists.delete(key)
    this.mem.listBits &= ~list.bit
  }

  /** A free bit for a new list; with MAX_LISTS lists kept, the least recently used one is dropped for it. */
  private listBit(): number {
    const mem = this.mem
    if (mem.lists.size >= MAX_LISTS) {
      let lru: [string, CandidateList] | undefined
      for (const e of mem.lists) if (!lru || e[1].usedAt < lru[1].usedAt) lru = e
      if (lru) this.dropList(lru[0], lru[1])
    }
    for (let k = 0; k < MAX_LISTS; k++) {
      const bit = 1 << k
      if ((mem.listBits & bit) === 0) {
        mem.listBits |= bit
        return bit
      }
    }
    throw new Error('no candidate list bit is free')
  }

  /** A list takes a post. */
  private hold(c: CachedPost, list: CandidateList): void {
    if (c.lists === 0) this.mem.held++
    c.lists |= list.bit
  }

  /** A post leaves a list (once no list holds it, it may be evicted). */
  private release(c: CachedPost, list: CandidateList, build: number): void {
    c.lists &= ~list.bit
    if (c.lists === 0) this.mem.held--
    c.used = build
    this.idle(c)
  }

  /** Queues a post for eviction (taken only if still unused by any list when its turn comes). */
  private idle(c: CachedPost): void {
    const q = this.mem.idle
    q.posts.push(c)
    q.used.push(c.used)
    // @NOTE without evictions (a cache under its cap) the queue would only grow: past twice the cache, stale entries go
    if (q.posts.length - q.head > 2 * this.mem.posts.size + 1024) {
      const live = (i: number) => q.posts[i].lists === 0 && q.posts[i].used === q.used[i] && this.mem.posts.get(q.posts[i].id) === q.posts[i]
      const keep: number[] = []
      for (let i = q.head; i < q.posts.length; i++) if (live(i)) keep.push(i)
      q.posts = keep.map((i) => q.posts[i])
      q.used = keep.map((i) => q.used[i])
      q.head = 0
    }
  }

  /** Keeps the cache of posts bounded: posts no list holds go, least recently used first. */
  private evict(build: number, rows: number): void {
    const mem = this.mem
    // @NOTE when builds come seldom and the newest posts change between them, most of each candidate list is new:
    // "unused for 50 builds" alone kept up to 50 lists' worth of posts (the 30-minute soak's refresh worker grew by
    // ~200 MB); the bound on the cache's size decides, and the least recently used posts go first
    mem.maxRows = Math.max(rows, Math.floor(mem.maxRows * 0.98))
    // @NOTE the posts lists hold, plus spare room: a cap of three times the largest list kept ~100,000 parsed posts no
    // list held (~85 MB, ~850 bytes a post) in every process that builds a list of 50,000 candidates
    const spare = Math.ceil(SPARE_POSTS_PER_CANDIDATE * mem.maxRows)
    const cap = Math.max(MIN_CACHED_POSTS, mem.held + spare)
    if (mem.posts.size <= cap) return
    // @NOTE down to half the spare room below the cap, least recently used first, from the queue of posts no list held
    // when they were queued: no pass over the cache (passes over 75,000–150,000 posts, up to six per build while too
    // few had been unused long enough, cost ~3 ms a build)
    const target = Math.max(mem.held, cap - Math.floor(spare / 2))
    const q = mem.idle
    while (mem.posts.size > target && q.head < q.posts.length) {
      const c = q.posts[q.head]
      const used = q.used[q.head]
      // posts that left a list in this build or the one before stay (what the old passes' last round kept)
      if (build - used <= 1) break
      q.head++
      if (c.lists === 0 && c.used === used && mem.posts.get(c.id) === c) mem.posts.delete(c.id)
    }
    if (q.head > 4096 && q.head * 2 > q.posts.length) {
      q.posts.splice(0, q.head)
      q.used.splice(0, q.head)
      q.head = 0
    }
  }

  /**
   * Scores computed at ingest, as the list's column for the instance: read
   * from SQLite once per post (then kept with it, and in the column), with
   * any missing ones computed now and saved.
   */
  private staticScores(inst: AgentInstance, list: CandidateList, now: number, dropped: Uint8Array): Float64Array {
    const key = inst.key
    const slot = this.slot(key)
    const items = list.items
    const n = items.length
    let col = list.cols.get(slot)
    if (!col) {
      col = grown(new Float64Array(0), n, 0)
      for (let i = 0; i < n; i++) col[i] = columnCode(items[i].scores[slot])
      list.cols.set(slot, col)
    }
    // one pass over the column (the posts still in): its drops, the posts not looked up yet and the ones with no
    // score (asked again)
    const unknown: number[] = []
    const none: number[] = []
    const { asked, drops: known } = scanColumn(col, n, dropped, unknown, none)
    let drops = known
    /** positions of posts scored here just now (not asked again below when the agent had no opinion) */
    let scoredNow: Uint8Array | null = null
    if (unknown.length) {
      const lookup = unknown.filter((i) => items[i].scores[slot] === undefined)
      if (lookup.length && this.runsHere(inst)) {
        // @NOTE a static in-process agent is a pure function of the post: scoring it here costs less than reading its
        // stored score (~1 µs a post against a random read of agent_scores, ~10 µs); null (no opinion) stays NaN
        const got = this.host.run(
          inst,
          lookup.map((i) => items[i].post),
          now,
        )
        scoredNow = new Uint8Array(n)
        lookup.forEach((i, j) => {
          const v = got[j]
          items[i].scores[slot] = v === null ? NaN : v === DROP ? null : v
          scoredNow![i] = 1
        })
      } else if (lookup.length) {
        // every stored score of these posts (all instances: other mixes need them next), in key order
        const byUri = new Map(lookup.map((i) => [items[i].post.uri, items[i]]))
        const sorted = [...byUri.keys()].sort()
        for (let i = 0; i < sorted.length; i += 10_000) {
          for (const [uri, instance, score] of this.scores.storedScores(JSON.stringify(sorted.slice(i, i + 10_000)))) {
            const c = byUri.get(uri)
            // @NOTE only instances that already have a slot: giving every stored instance one would evict those in use
            const at = instance === key ? slot : this.mem.slots.get(instance)
            if (c && at !== undefined) c.scores[at] = score
          }
        }
      }
      const before = none.length
      for (const i of unknown) {
        const c = items[i]
        if (c.scores[slot] === undefined) c.scores[slot] = NaN
        const v = columnCode(c.scores[slot])
        col[i] = v
        if (v === DROP_CODE) {
          dropped[i] = 1
          drops++
        } else if (v !== v && !scoredNow?.[i]) none.push(i)
      }
      // @NOTE asked in list order, as a single pass would
      if (before && none.length > before) none.sort((a, b) => a - b)
    }
    // @NOTE NaN: no score stored (the agent had no opinion), asked again
    const still = this.mayRun(inst) ? none : []
    if (still.length) {
      const got = this.host.run(
        inst,
        still.map((i) => items[i].post),
        now,
      )
      if (got.some((v) => v !== null)) {
        const uris: string[] = []
        const saved: (number | null)[] = []
        still.forEach((i, j) => {
          const v = got[j]
          // @NOTE "no opinion" (null) is not stored: the next build asks again
          if (v === null) return
          const c = items[i]
          c.scores[slot] = v === DROP ? null : v
          col[i] = columnCode(c.scores[slot])
          if (v === DROP) {
            dropped[i] = 1
            drops++
          }
          uris.push(c.post.uri)
          saved.push(c.scores[slot])
        })
        this.scores.saveScores(key, uris, saved)
      }
    }
    if (asked) this.mem.dropShare.set(key, drops / asked)
    return col.subarray(0, n)
  }

  /** A list's column of its posts' createdAt, like or repost counts (slot TIME, LIKES, REPOSTS), made the first time it is asked for. */
  private figureColumn(list: CandidateList, slot: number): Float64Array {
    let col = list.cols.get(slot)
    if (!col) {
      const n = list.items.length
      col = grown(new Float64Array(0), n, 0)
      for (let i = 0; i < n; i++) col[i] = cellOf(list.items[i], slot)
      list.cols.set(slot, col)
    }
    return col
  }

  /** Whether ranking here runs an instance itself rather than reading its stored scores: in-process agents it may run. */
  private runsHere(inst: AgentInstance): boolean {
    const kind = this.host.kindOf(inst.def.id)
    return (kind === 'builtin' || kind === 'installed') && this.mayRun(inst)
  }

  /** The slot of an instance (made now if it has none; the least recently used slot goes when there are maxSlots). */
  private slot(key: string): number {
    const mem = this.mem
    let n = mem.slots.get(key)
    if (n !== undefined) {
      mem.slots.delete(key)
    } else {
      if (mem.slots.size >= this.maxSlots) this.evictSlot()
      n = mem.freeSlots.pop() ?? mem.slots.size
    }
    mem.slots.set(key, n)
    mem.slotBuild.set(n, mem.builds)
    return n
  }

  /** Forgets the least recently used slot (not one this build uses): its column in every list and its score in every post. */
  private evictSlot(): void {
    const mem = this.mem
    for (const [key, n] of mem.slots) {
      if (mem.slotBuild.get(n) === mem.builds) continue
      mem.slots.delete(key)
      mem.slotBuild.delete(n)
      for (const list of mem.lists.values()) list.cols.delete(n)
      for (const c of mem.posts.values()) if (c.scores.length > n) c.scores[n] = undefined
      mem.freeSlots.push(n)
      this.log.debug({ instance: key, slots: mem.slots.size }, 'agent instance column evicted')
      return
    }
  }

  /** Instances holding a slot now (at most SKYSIFT_AGENT_INSTANCES, shared by every ListBuilder on this connection). */
  slotCount(): number {
    return this.mem.slots.size
  }

  /**
   * Ranks the feed's candidates for a mix and stores the result as a new
   * snapshot under `key` (the mix fingerprint, or a per-reader key for
   * personal lists, which get the reader's context).
   */
  build(feed: Feed, mix: ResolvedMix, now = Date.now(), opts: { key?: string; subscriber?: SubscriberContext } = {}): SnapshotInfo {
    const t0 = performance.now()
    const { items, deletionSeq } = this.rankAt(feed, mix, now, opts.subscriber, this.cacheSize)
    return this.pages.store(feed, opts.key ?? mix.fingerprint, items, now, performance.now() - t0, deletionSeq)
  }
}

/**
 * Over the posts not dropped yet: notes a static column's drops in `dropped`, and which of its posts were not looked
 * up yet and which have no score (NaN). A post already dropped is not asked about: its cell may stay not looked up.
 */
function scanColumn(col: Float64Array, n: number, dropped: Uint8Array, unknown: number[], none: number[]): { asked: number; drops: number } {
  let asked = 0
  let drops = 0
  for (let i = 0; i < n; i++) {
    if (dropped[i] !== 0) continue
    asked++
    const v = col[i]
    if (v === DROP_CODE) {
      dropped[i] = 1
      drops++
    } else if (v !== v) none.push(i)
    else if (v === NOT_LOOKED_UP) unknown.push(i)
  }
  return { asked, drops }
}

/**
 * Numbers (integers) once each, ascending: through a bitmap over their span when it is small next to their count
 * (the ids of new posts, logged again for every batch that changes them), else by sorting.
 */
export function uniqueAscending(ids: number[]): Float64Array {
  const n = ids.length
  if (n === 0) return new Float64Array(0)
  let lo = ids[0]
  let hi = ids[0]
  for (let k = 1; k < n; k++) {
    const v = ids[k]
    if (v < lo) lo = v
    else if (v > hi) hi = v
  }
  const span = hi - lo + 1
  if (span > 4 * n + 64) {
    const sorted = new Float64Array(ids).sort()
    let m = 0
    for (let k = 0; k < n; k++) if (k === 0 || sorted[k] !== sorted[k - 1]) sorted[m++] = sorted[k]
    return sorted.subarray(0, m)
  }
  const mark = new Uint8Array(span)
  let m = 0
  for (let k = 0; k < n; k++) {
    const at = ids[k] - lo
    if (mark[at] === 0) {
      mark[at] = 1
      m++
    }
  }
  const out = new Float64Array(m)
  let w = 0
  for (let at = 0; at < span; at++) if (mark[at] === 1) out[w++] = lo + at
  return out
}

/** The positions not dropped, or null when none is (then every position stays). */
function undropped(dropped: Uint8Array): Int32Array | null {
  const n = dropped.length
  const out = new Int32Array(n)
  let m = 0
  for (let i = 0; i < n; i++) if (dropped[i] === 0) out[m++] = i
  return m === n ? null : out.subarray(0, m)
}

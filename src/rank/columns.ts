import type { AgentPost, PostColumns } from '../score/sdk.ts'
import { DROP_CODE } from './rank.ts'

/** A post as ranking keeps it in memory: immutable for its id, apart from the counts (kept current by the change log). */
export interface CachedPost {
  id: number
  post: AgentPost
  /**
   * static scores by instance slot: a number; null = drop; NaN = none stored (the agent had no opinion: it is asked
   * again every build, as a post without a stored score always was); undefined = not looked up
   */
  scores: (number | null | undefined)[]
  /** the build that last used it (older ones are evicted) */
  used: number
  /** the candidate lists holding it, one bit each (see CandidateList.bit); a post in a list is never evicted: the list keeps its counts current */
  lists: number
}

/**
 * The newest `max` posts of one window (a feed's windowHours), newest first, kept current from the change log
 * (`post_changes`): a build reads what changed since the list's `seq` instead of every candidate again.
 */
export interface CandidateList {
  max: number
  items: CachedPost[]
  /** this list's bit in its posts' `lists` (one of MAX_LISTS): whether a post is in the list, without a set of ids */
  bit: number
  /** the post_changes row the list is current with */
  seq: number
  /**
   * the list held `max` posts when last filled or trimmed: older posts of the window may exist past its tail.
   * When false the list holds every post of the window, so every new post of the window joins it and a deletion
   * leaves nothing to take up.
   */
  full: boolean
  usedAt: number
  /**
   * static scores by instance slot, aligned with `items` (read up to items.length), encoded as ranking reads them
   * (encodeScores) plus NOT_LOOKED_UP: kept in step with the items, so a build reads them without touching every post;
   * and under TIME, LIKES and REPOSTS (once an agent scored columns from them) the posts' createdAt and current counts
   */
  cols: Map<number, Float64Array>
}

/** Slots of a list's columns that hold the posts' own figures (agents' slots are 0 and up). */
export const TIME = -1
export const LIKES = -2
export const REPOSTS = -3

/** In a list's column: the post's stored scores were not read yet. */
export const NOT_LOOKED_UP = Infinity

/** Newest first; ties by id, larger first. */
export const newerFirst = (a: CachedPost, b: CachedPost) => b.post.createdAt - a.post.createdAt || b.id - a.id

/** A cached post's static score for a slot, as a list's column holds it. */
export function columnCode(v: number | null | undefined): number {
  return v === undefined ? NOT_LOOKED_UP : v === null ? DROP_CODE : v
}

/** What a list's column holds for a post: its static score for an agent's slot, or its own figure (TIME, LIKES, REPOSTS). */
export function cellOf(c: CachedPost, slot: number): number {
  if (slot >= 0) return columnCode(c.scores[slot])
  return slot === TIME ? c.post.createdAt : slot === LIKES ? c.post.likeCount : c.post.repostCount
}

/** A column with room for `n` entries (its first `keep` copied from `col`). */
export function grown(col: Float64Array, n: number, keep: number): Float64Array {
  if (col.length >= n) return col
  const out = new Float64Array(Math.max(1024, Math.ceil(n * 1.25)))
  out.set(col.subarray(0, keep))
  return out
}

/** The positions no column drops, or null when none is dropped (then every position stays). */
export function survivors(n: number, cols: Float64Array[]): Int32Array | null {
  if (!cols.length) return null
  // @NOTE one column at a time: a tight loop over each typed array, not a loop over the columns for every position
  const dropped = new Uint8Array(n)
  let any = false
  for (const col of cols) {
    for (let i = 0; i < n; i++) {
      if (col[i] === DROP_CODE) {
        dropped[i] = 1
        any = true
      }
    }
  }
  if (!any) return null
  const out = new Int32Array(n)
  let m = 0
  for (let i = 0; i < n; i++) if (dropped[i] === 0) out[m++] = i
  return out.subarray(0, m)
}

/** Where a post of the list sits, or -1 (the list is newest first, ties by id, larger first; its TIME column must exist). */
export function positionOf(list: CandidateList, c: CachedPost): number {
  const time = list.cols.get(TIME)!
  const t = c.post.createdAt
  let lo = 0
  let hi = list.items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (time[mid] > t || (time[mid] === t && list.items[mid].id > c.id)) lo = mid + 1
    else hi = mid
  }
  return list.items[lo] === c ? lo : -1
}

/** The time and engagement columns of some posts. */
export function figuresOf(posts: AgentPost[]): PostColumns {
  const n = posts.length
  const out = { length: n, createdAt: new Float64Array(n), likeCount: new Float64Array(n), repostCount: new Float64Array(n) }
  posts.forEach((p, i) => {
    out.createdAt[i] = p.createdAt
    out.likeCount[i] = p.likeCount
    out.repostCount[i] = p.repostCount
  })
  return out
}

/** col[i] for each i of `at`. */
export function gather(col: Float64Array, at: Int32Array): Float64Array {
  const out = new Float64Array(at.length)
  for (let k = 0; k < at.length; k++) out[k] = col[at[k]]
  return out
}

/** A stored JSON array of strings (langs, tags, labels): most are empty or one of a few language lists. */
export function parseList(json: string): string[] {
  if (json === '[]') return []
  let v = listCache.get(json)
  if (v === undefined) {
    v = JSON.parse(json) as string[]
    if (json.length <= 32) {
      if (listCache.size >= 1000) listCache.clear()
      listCache.set(json, v)
    }
  }
  // @NOTE a copy: agents get their own arrays
  return v.slice()
}
const listCache = new Map<string, string[]>()

/** Merges posts sorted newest first into a list (sorted the same way), columns included. */
export function mergeNewest(list: CandidateList, b: CachedPost[]): void {
  const a = list.items
  const na = a.length
  const nb = b.length
  const n = na + nb
  const time = list.cols.get(TIME)
  const bTime = new Float64Array(nb)
  for (let j = 0; j < nb; j++) bTime[j] = b[j].post.createdAt
  // where each merged entry comes from, up to the last of `b` (i >= 0 is a[i], ~j is b[j]); the rest is a's tail
  const from = new Int32Array(n)
  let i = 0
  let j = 0
  let k = 0
  while (j < nb) {
    let first = false
    if (i < na) {
      // @NOTE the time column when there is one: it spares a look at each post object
      const ta = time ? time[i] : a[i].post.createdAt
      const tb = bTime[j]
      first = ta !== tb ? ta > tb : a[i].id > b[j].id
    }
    if (first) from[k++] = i++
    else from[k++] = ~j++
  }
  const head = k
  const tail = i
  // @NOTE in place, without new arrays (a build merges every few seconds; the garbage of a new list and its columns
  // each time cost more than the merge): a's tail moves up by b.length, then the head is written from its end, where
  // every a[f] still to be read sits at or before the position written
  a.length = n
  for (let q = n - 1; q >= head; q--) a[q] = a[q - head + tail]
  for (let q = head - 1; q >= 0; q--) {
    const f = from[q]
    a[q] = f >= 0 ? a[f] : b[~f]
  }
  const cells = new Float64Array(nb)
  for (const [slot, old] of list.cols) {
    const col = grown(old, n, na)
    col.copyWithin(head, tail, na)
    // @NOTE the new posts' cells first, so the merge itself reads only typed arrays
    if (slot === TIME) cells.set(bTime)
    else for (let q = 0; q < nb; q++) cells[q] = cellOf(b[q], slot)
    mergeColumn(col, cells, from, head)
    if (col !== old) list.cols.set(slot, col)
  }
}

/** Writes a column's merged head from its end: col[q] from col[from[q]] (an old cell) or cells[~from[q]] (a new one). */
function mergeColumn(col: Float64Array, cells: Float64Array, from: Int32Array, head: number): void {
  for (let q = head - 1; q >= 0; q--) {
    const f = from[q]
    col[q] = f >= 0 ? col[f] : cells[~f]
  }
}

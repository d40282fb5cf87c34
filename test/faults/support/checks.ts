/**
 * The end-of-scenario checks shared by the crash, Redis-outage and bad-input
 * scenarios: the store against the independent model, like counts, and the
 * feeds a running server answers.
 */
import type Database from 'better-sqlite3'
import type { Queue } from 'bullmq'
import { expect } from 'vitest'
import { engagementKey } from '../../../src/store/engagement-key.ts'
import type { Model } from './model.ts'
import { until } from './scenario.ts'

export interface StoreCheck {
  /** posts the model says must be stored */
  strictPosts: number
  missingPosts: string[]
  extraPosts: string[]
  /** stored posts whose version is not the newest (an edit undone) */
  stalePosts: string[]
  /** posts hidden with their accounts that are not kept aside (withheld_posts) with their newest version, or kept when not hidden */
  badWithheld: string[]
  /** accounts whose stored status is not their last one */
  wrongAccounts: string[]
  duplicateUris: number
  /** sum over posts of model likes − stored likes (≥ 0 when nothing is over-counted) */
  likesMissing: number
  likesModel: number
  /** posts with more likes stored than the model has */
  overCounted: string[]
  /** posts whose like_count differs from their rows in `engagements` */
  inconsistentCounts: string[]
  /** stored likes (engagements) of stored posts that are not live likes in the model */
  phantomLikes: string[]
}

/**
 * Asserts the store equals the model: posts exactly (each once, newest
 * version), posts of inactive accounts kept aside, every account's last
 * status, and likes: every live like stored and counted once
 * (also those whose batch was stored before their post's), never a deleted or
 * unknown like, the count agreeing with the rows. Lists are cut to 10 entries.
 */
export function expectStoreMatchesModel(check: StoreCheck, likesNotStored: string[] = []): void {
  expect(check.duplicateUris).toBe(0)
  expect(check.missingPosts.slice(0, 10)).toEqual([])
  expect(check.extraPosts.slice(0, 10)).toEqual([])
  expect(check.stalePosts.slice(0, 10)).toEqual([])
  expect(check.badWithheld.slice(0, 10)).toEqual([])
  expect(check.wrongAccounts.slice(0, 10)).toEqual([])
  expect(check.overCounted.slice(0, 10)).toEqual([])
  expect(check.phantomLikes.slice(0, 10)).toEqual([])
  expect(check.inconsistentCounts.slice(0, 10)).toEqual([])
  expect(likesNotStored.slice(0, 10)).toEqual([])
  expect(check.likesMissing).toBe(0)
}

/** Compares the store with the model: posts, their versions, accounts and likes exactly. */
export function checkStore(db: Database.Database, model: Model): StoreCheck {
  const rows = db.prepare('SELECT uri, author, cid, like_count AS likes FROM posts').all() as { uri: string; author: string; cid: string; likes: number }[]
  const distinct = Number(db.prepare('SELECT count(DISTINCT uri) FROM posts').pluck().get())
  const stored = new Map(rows.map((r) => [r.uri, r]))
  const out: StoreCheck = {
    strictPosts: 0,
    missingPosts: [],
    extraPosts: [],
    stalePosts: [],
    badWithheld: [],
    wrongAccounts: [],
    duplicateUris: rows.length - distinct,
    likesMissing: 0,
    likesModel: 0,
    overCounted: [],
    inconsistentCounts: [],
    phantomLikes: [],
  }
  for (const [uri, p] of model.posts) {
    out.strictPosts++
    const r = stored.get(uri)
    if (!r) {
      out.missingPosts.push(uri)
      continue
    }
    if (r.cid !== p.cid) out.stalePosts.push(`${uri}: stored ${r.cid}, newest ${p.cid}`)
    out.likesModel += p.likes
    if (r.likes > p.likes) out.overCounted.push(`${uri}: stored ${r.likes} > model ${p.likes}`)
    else out.likesMissing += p.likes - r.likes
  }
  for (const r of rows) if (!model.posts.has(r.uri)) out.extraPosts.push(r.uri)
  const withheld = new Map((db.prepare('SELECT uri, cid FROM withheld_posts').all() as { uri: string; cid: string }[]).map((r) => [r.uri, r.cid]))
  for (const [uri, p] of model.hidden) if (withheld.get(uri) !== p.cid) out.badWithheld.push(`${uri}: kept ${withheld.get(uri) ?? 'nothing'}, newest ${p.cid}`)
  for (const uri of withheld.keys()) if (!model.hidden.has(uri)) out.badWithheld.push(`${uri}: kept, but not hidden`)
  const statuses = new Map((db.prepare('SELECT did, status FROM account_status').all() as { did: string; status: string }[]).map((r) => [r.did, r.status]))
  for (const [did, status] of model.accounts)
    if (statuses.get(did) !== status) out.wrongAccounts.push(`${did}: stored ${statuses.get(did) ?? 'nothing'}, last ${status}`)
  for (const did of statuses.keys()) if (!model.accounts.has(did)) out.wrongAccounts.push(`${did}: stored, but no status event`)
  const counted = new Map(
    (db.prepare("SELECT subject, count(*) AS n FROM engagements WHERE kind = 'like' GROUP BY subject").all() as { subject: string; n: number }[]).map((r) => [
      r.subject,
      r.n,
    ]),
  )
  for (const r of rows) {
    if ((counted.get(r.uri) ?? 0) === r.likes) continue
    // also a purged author's post that comes back (reactivation, then an update or a re-delivered create): it counts the likes still stored
    out.inconsistentCounts.push(`${r.uri}: like_count ${r.likes}, engagements ${counted.get(r.uri) ?? 0}`)
  }
  // stored likes are keyed by a hash of their URI: the model's likes by the same key
  const modelLikes = new Map([...model.likes].map(([uri, l]) => [engagementKey(uri), { uri, subject: l.subject }]))
  for (const e of db.prepare("SELECT key, subject FROM engagements WHERE kind = 'like'").safeIntegers().iterate() as Iterable<{
    key: bigint
    subject: string
  }>) {
    // likes of a post deleted since stay in `engagements` (nothing counts them any more)
    if (!stored.has(e.subject)) continue
    if (modelLikes.get(e.key)?.subject !== e.subject) out.phantomLikes.push(`key ${e.key} on ${e.subject}`)
  }
  return out
}

/** One store job as BullMQ kept it: the file lines it covers, when it was last taken, how often. */
interface StoreJobView {
  first: number
  last: number
  events: number
  processedOn: number
  attemptsStarted: number
  uris: string[]
}

/**
 * Completed store jobs seen so far, by id: BullMQ keeps a completed job 10
 * minutes (2,000 at most), so a long run collects them as it goes.
 */
export class StoreJobLog {
  readonly jobs = new Map<string, StoreJobView>()

  /** Adds the completed jobs BullMQ holds now (a job seen again keeps its highest attempt count). */
  async collect(storeQueue: Queue): Promise<void> {
    for (const j of await storeJobs(storeQueue)) {
      const had = this.jobs.get(j.id)
      if (!had || j.attemptsStarted >= had.attemptsStarted) this.jobs.set(j.id, j)
    }
  }
}

async function storeJobs(storeQueue: Queue): Promise<(StoreJobView & { id: string })[]> {
  const out: (StoreJobView & { id: string })[] = []
  for (let start = 0; ; start += 200) {
    const jobs = await storeQueue.getJobs(['completed'], start, start + 199, true)
    if (!jobs.length) break
    for (const j of jobs) {
      const m = /_(\d+)_(\d+)_\d+$/.exec(j.id ?? '')
      const events = (j.data as { events?: { uri?: string; did?: string }[] })?.events ?? []
      out.push({
        id: j.id ?? '',
        first: m ? Number(m[1]) : NaN,
        last: m ? Number(m[2]) : NaN,
        events: events.length,
        processedOn: j.processedOn ?? 0,
        attemptsStarted: j.attemptsStarted ?? 1,
        uris: events.map((e) => e.uri ?? e.did ?? ''),
      })
    }
  }
  return out
}

export interface Accounting {
  /** completed store jobs kept by BullMQ (10 min, 2,000 jobs) */
  storeJobs: number
  /** store jobs taken again after a crash (their batch may have been applied twice) */
  rerunJobs: number
  /** event lines of the file no store job covers: events skipped */
  uncoveredEventLines: number[]
  /** events that may legitimately be applied more than once: re-run jobs, and lines two batches share (ingest re-read them) */
  duplicateBound: number
  /** store jobs taken out of file order */
  reordered: number
  /** live likes of strictly checked posts that the store lacks */
  likesMissing: string[]
}

/**
 * What the store queue's completed jobs say about the run (BullMQ keeps them
 * 10 minutes): whether every event line of the file was in some stored batch
 * (nothing skipped), how many events may have been applied twice, and why
 * likes are missing.
 *
 * Likes: every live like of a post the model checks strictly must be
 * stored, whatever order the batches were stored in (a like that arrives
 * before its post waits for it; see PENDING_ENGAGEMENT_MS in the writer).
 */
export async function accounting(db: Database.Database, model: Model, storeQueue: Queue, log = new StoreJobLog()): Promise<Accounting> {
  await log.collect(storeQueue)
  const jobs = [...log.jobs.values()]
  // coverage of the file's event lines by the batches stored
  const cover = new Map<number, number>()
  for (const j of jobs) {
    if (!Number.isFinite(j.first)) continue
    for (let l = j.first; l <= j.last; l++) if (model.eventLines.has(l)) cover.set(l, (cover.get(l) ?? 0) + 1)
  }
  const uncoveredEventLines = [...model.eventLines].filter((l) => !cover.has(l))
  let shared = 0
  for (const c of cover.values()) shared += c - 1
  const rerun = jobs.filter((j) => j.attemptsStarted > 1)
  const duplicateBound = shared + rerun.reduce((n, j) => n + (j.attemptsStarted - 1) * j.events, 0)
  const byTime = [...jobs].sort((a, b) => a.processedOn - b.processedOn)
  let reordered = 0
  let maxFirst = 0
  for (const j of byTime) {
    if (j.first < maxFirst) reordered++
    maxFirst = Math.max(maxFirst, j.first)
  }
  const stored = new Set(db.prepare("SELECT key FROM engagements WHERE kind = 'like'").pluck().safeIntegers().all() as bigint[])
  const missing: string[] = []
  for (const [uri, l] of model.likes) {
    const post = model.posts.get(l.subject)!
    if (stored.has(engagementKey(uri))) continue
    missing.push(`${uri} (line ${l.line}) on ${l.subject} (line ${post.line})`)
  }
  return { storeJobs: jobs.length, rerunJobs: rerun.length, uncoveredEventLines, duplicateBound, reordered, likesMissing: missing }
}

export interface SkeletonPage {
  feed: { post: string; feedContext?: string }[]
  cursor?: string
}

/** Every item of a feed's current list for an anonymous reader, paging with the cursor. */
export async function readWholeFeed(base: string, feedUri: string, maxPages = 200): Promise<{ posts: string[]; pages: number; statuses: number[] }> {
  const posts: string[] = []
  const statuses: number[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const q = new URLSearchParams({ feed: feedUri, limit: '100', ...(cursor ? { cursor } : {}) })
    const res = await fetch(`${base}/xrpc/app.bsky.feed.getFeedSkeleton?${q}`, { signal: AbortSignal.timeout(30_000) })
    statuses.push(res.status)
    if (res.status !== 200) break
    const body = (await res.json()) as SkeletonPage
    posts.push(...body.feed.map((i) => i.post))
    cursor = body.cursor
    pages++
  } while (cursor && pages < maxPages)
  return { posts, pages, statuses }
}

/**
 * A feed read to its end once it lists something (or answers other than 200): the list a reader gets may
 * predate the last posts, as it is rebuilt once stale.
 */
export function readListedFeed(base: string, feedUri: string): Promise<{ posts: string[]; pages: number; statuses: number[] }> {
  return until(
    `a non-empty ${feedUri}`,
    async () => {
      const g = await readWholeFeed(base, feedUri)
      return g.posts.length > 0 || g.statuses.some((st) => st !== 200) ? g : null
    },
    60_000,
    1000,
  )
}

/** Checks the posts a feed served: all live (in the store and in the model), none twice. */
export function checkServed(db: Database.Database, model: Model, served: string[]): { notStored: string[]; notLive: string[]; repeated: number } {
  const inStore = db.prepare('SELECT author FROM posts WHERE uri = ?').pluck()
  const notStored: string[] = []
  const notLive: string[] = []
  for (const uri of served) {
    const author = inStore.get(uri) as string | undefined
    if (author === undefined) notStored.push(uri)
    else if (!model.posts.has(uri)) notLive.push(uri)
  }
  return { notStored, notLive, repeated: served.length - new Set(served).size }
}

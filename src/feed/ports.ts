import type { Feed } from '../feeds.ts'
import type { ResolvedMix } from '../rank/mix.ts'
import type { CountRow, CountsRow, PostRow } from '../store/candidates.ts'
import type { InteractionStore } from '../store/interactions.ts'
import type { MixStore } from '../store/mixes.ts'
import type { ListItem, SnapshotInfo } from '../store/snapshots.ts'

/**
 * What the feed layer needs of the store and of the queues, as small interfaces. The store's repositories
 * (SnapshotRepository, CandidateRepository, MixStore, InteractionStore, UsageRepository) implement them; wiring
 * passes them in.
 */

/** Stored snapshots of ranked lists, and what paging them needs of the posts (live or not, deletions logged). */
export interface SnapshotStore {
  latest(feed: string, key: string): SnapshotInfo | undefined
  /** whether a snapshot exists, and the newest post_deletions row, in one look */
  probe(snapshot: number): { exists: boolean; lastDeletion: number }
  itemsJson(snapshot: number): string | undefined
  key(snapshot: number): { feed: string; key: string } | undefined
  lastDeletion(): number
  deletionsSince(seq: number): [number, string][]
  /** moves whenever deletions are logged through this process's connection */
  deletionsLoggedHere(): number
  postExists(uri: string): boolean
  newestPostAt(): number
  insert(feed: string, key: string, items: ListItem[], builtAt: number, buildMs: number, checkedAt?: number): { id: number; size: number }
  prune(builtBefore: number, supersededBefore: number): number
}

/** The candidate posts of a feed's window and the change log that keeps a list of them current. */
export interface CandidateStore {
  /** runs `read` in one read transaction */
  consistently<T>(read: () => T): T
  changeSpan(): [number | null, number | null]
  lastDeletion(): number
  newest(since: number, max: number): CountRow[]
  older(since: number, until: number, max: number): CountRow[]
  changedIds(seq: number): number[]
  countsById(idsJson: string): CountsRow[]
  postsById(idsJson: string, since?: number): PostRow[]
  /** whole posts with ids from lo to hi created at `since` or later, in id order */
  postsInRange(lo: number, hi: number, since: number): PostRow[]
  /** who a reader's lists leave out (consent, blocks), or null when no one */
  excluder(reader: string | null): ((author: string) => boolean) | null
}

/** Static scores stored by agent instance. */
export interface ScoreStore {
  storedScores(urisJson: string): [string, string, number | null][]
  instanceScores(instance: string, urisJson: string): [string, number | null][]
  saveScores(instance: string, uris: string[], scores: (number | null)[]): void
}

/** Readers' saved mixes. */
export type MixesStore = Pick<MixStore, 'effective' | 'version' | 'put' | 'delete' | 'byFingerprint'>

/** Readers' feedback ("more", "less", seen). */
export type FeedbackStore = Pick<InteractionStore, 'signature' | 'active' | 'add' | 'recent' | 'undo'>

/** Agents' usage counts. */
export interface UsageStore {
  mixesPerAgent(): { agent: string; n: number }[]
  itemsPerAgent(): { agent: string; value: number }[]
  addItems(entries: [string, number][]): void
}

/** Where list rebuilds are asked of refresh workers. */
export interface RefreshQueue {
  /** asks for a rebuild of a list; rejects when the queue is unreachable */
  request(feed: Feed, mix: ResolvedMix, subscriber: string | null, opts: { complete: boolean }): Promise<void>
}

/** Tells score workers about the static agent instances a mix uses (so they score new posts for it ahead). */
export interface InstanceRegistration {
  register(mix: ResolvedMix): Promise<void>
}

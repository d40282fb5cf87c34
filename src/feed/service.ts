import type { Feed } from '../feeds.ts'
import type { Explanation } from '../rank/explain.ts'
import type { FeedbackEvent } from '../rank/feedback.ts'
import type { ResolvedMix } from '../rank/mix.ts'
import type { StoredInteraction } from '../store/interactions.ts'
import type { SnapshotInfo } from '../store/snapshots.ts'
import type { FeedServiceDeps } from './deps.ts'
import { Feedback, type FeedbackView } from './feedback.ts'
import { Mixes, type Effective, type MixView } from './mixes.ts'
import { Skeletons, type Skeleton, type SkeletonItem } from './skeleton.ts'

/**
 * The feed use-cases as the HTTP layer calls them, one object: serving
 * skeletons (Skeletons), readers' mixes (Mixes), feedback and explanations
 * (Feedback). Each method hands over to the part that does it.
 */
export class FeedService {
  readonly feeds: Feed[]
  private readonly byUri = new Map<string, Feed>()
  private readonly mixes: Mixes
  private readonly skeletons: Skeletons
  private readonly feedbacks: Feedback
  private readonly changed: NonNullable<FeedServiceDeps['onReaderChanged']>

  constructor(deps: FeedServiceDeps) {
    this.feeds = deps.feeds
    this.changed = deps.onReaderChanged ?? (() => {})
    for (const f of deps.feeds) this.byUri.set(f.uri, f)
    this.mixes = new Mixes(deps)
    this.skeletons = new Skeletons(deps, this.mixes)
    this.feedbacks = new Feedback(deps, this.mixes)
  }

  feed(uri: string): Feed | undefined {
    return this.byUri.get(uri)
  }

  /** Finds a hosted feed by its record key, whatever DID the URI names (used when no publisher is configured). */
  feedByRkey(rkey: string): Feed | undefined {
    return this.feeds.find((f) => f.rkey === rkey)
  }

  /** The mix that applies to a reader: their saved one (else the feed's default), nudged by their feedback. */
  mixFor(feed: Feed, subscriber: string | null, now = Date.now(), interests: readonly string[] = []): Effective {
    return this.mixes.mixFor(feed, subscriber, now, interests)
  }

  /** One page of a reader's feed. */
  skeleton(feed: Feed, subscriber: string | null, limit: number, cursor?: string, interests: readonly string[] = []): Skeleton {
    return this.skeletons.skeleton(feed, subscriber, limit, cursor, interests)
  }

  /**
   * The snapshot a reader's first page is read from (their mix → its current list → their overlay); `quiet`: a look
   * that is no reader's request (see Skeletons.place).
   */
  place(feed: Feed, subscriber: string | null, interests: readonly string[] = [], now = Date.now(), opts: { quiet?: boolean } = {}): SnapshotInfo {
    return this.skeletons.place(feed, subscriber, interests, now, opts)
  }

  /** A page as the JSON of a getFeedSkeleton response, with its request id. */
  skeletonJson(page: Skeleton, reqId: string): string {
    return this.skeletons.skeletonJson(page, reqId)
  }

  /** Notes a signed-in reader seen outside a feed request (web sign-in). */
  readerSeen(did: string): void {
    this.skeletons.readerSeen(did)
  }

  /** Rebuilds the reader's personal lists (their graph changed); how many. */
  rebuildFor(did: string): number {
    return this.skeletons.rebuildFor(did)
  }

  /** The newest shared list for a mix (and reader, for personal mixes); built now if there is none, refreshed in the background if stale. */
  current(feed: Feed, mix: ResolvedMix, subscriber: string | null = null, now = Date.now()): SnapshotInfo {
    return this.skeletons.current(feed, mix, subscriber, now)
  }

  /** Builds a list now (also what refresh workers call). */
  build(feed: Feed, mix: ResolvedMix, subscriber: string | null, now = Date.now()): SnapshotInfo {
    return this.skeletons.build(feed, mix, subscriber, now)
  }

  /** What getMix answers. */
  viewMix(feed: Feed, subscriber: string): MixView {
    return this.mixes.viewMix(feed, subscriber)
  }

  /** Every feed where the reader has a saved mix. */
  listMixes(subscriber: string): MixView[] {
    return this.mixes.listMixes(subscriber)
  }

  /** Validates and saves a private mix (throws FieldError naming the bad field). */
  async putMix(feed: Feed, subscriber: string, agents: unknown): Promise<MixView> {
    const view = await this.mixes.putMix(feed, subscriber, agents)
    // @NOTE awaited (the publisher bounds it): the reader's next first page, on any node, is read from the new mix
    await this.changed(subscriber, 'mix', feed)
    return view
  }

  /** Forgets the reader's private mix (a public record, if any, then applies). */
  async deleteMix(feed: Feed, subscriber: string): Promise<boolean> {
    const deleted = this.mixes.deleteMix(feed, subscriber)
    if (deleted) await this.changed(subscriber, 'mix', feed)
    return deleted
  }

  /** The first page a mix would produce for this reader, without saving or keeping anything (see Mixes.previewMix). */
  previewMix(feed: Feed, subscriber: string | null, agents: unknown, limit: number): Promise<{ feed: SkeletonItem[]; fingerprint: string }> {
    return this.mixes.previewMix(feed, subscriber, agents, limit)
  }

  /** Remembers which feed a response went to, so feedback that names only the request id finds its feed. */
  noteRequest(reqId: string, feed: Feed): void {
    this.feedbacks.noteRequest(reqId, feed)
  }

  /** Stores feedback; the reader's next first page reflects it. Items whose feed cannot be told are skipped. */
  addFeedback(
    subscriber: string,
    items: { postUri: string; event: FeedbackEvent; feedContext: string | null; reqId: string | null }[],
    feedUri?: string,
  ): number {
    const stored = this.feedbacks.addFeedback(subscriber, items, feedUri)
    if (stored) this.changed(subscriber, items.every((i) => i.event === 'seen') ? 'seen' : 'feedback')
    return stored
  }

  /** The reader's recent "more"/"less" for a feed, with the nudges each one made to the reader's own agents. */
  feedback(feed: Feed, subscriber: string, limit = 50): FeedbackView[] {
    return this.feedbacks.feedback(feed, subscriber, limit)
  }

  undoFeedback(subscriber: string, id: number): StoredInteraction | null {
    const undone = this.feedbacks.undoFeedback(subscriber, id)
    if (undone) this.changed(subscriber, 'feedback')
    return undone
  }

  /** "Why am I seeing this": an item's attribution in plain language (see Feedback.explain). */
  explain(feedContext: string, requester: string | null): Explanation | null {
    return this.feedbacks.explain(feedContext, requester)
  }
}

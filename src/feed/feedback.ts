import type { Feed } from '../feeds.ts'
import { explain, type Explanation } from '../rank/explain.ts'
import { decodeFeedContext } from '../rank/feed-context.ts'
import { nudgesOf, type FeedbackEvent, type Nudge } from '../rank/feedback.ts'
import type { ResolvedMix } from '../rank/mix.ts'
import type { StoredInteraction } from '../store/interactions.ts'
import type { FeedServiceDeps } from './deps.ts'
import { feedIndexOf } from './request-id.ts'
import { remember, type Mixes } from './mixes.ts'

/** A reader's feedback as listed, with the nudges it made to the reader's own agents. */
export interface FeedbackView extends StoredInteraction {
  nudges: Nudge[]
}

/**
 * Readers' feedback ("more", "less", seen) on served items: adding it (to
 * the feed the item came from), listing and undoing it, and explaining an
 * item ("why am I seeing this").
 */
export class Feedback {
  private readonly d: FeedServiceDeps
  private readonly mixes: Mixes
  private readonly byUri = new Map<string, Feed>()
  private readonly requests = new Map<string, string>()

  constructor(deps: FeedServiceDeps, mixes: Mixes) {
    this.d = deps
    this.mixes = mixes
    for (const f of deps.feeds) this.byUri.set(f.uri, f)
  }

  /** Remembers which feed a response went to, so feedback that names only the request id finds its feed. */
  noteRequest(reqId: string, feed: Feed): void {
    remember(this.requests, reqId, feed.uri)
  }

  /** Stores feedback; the reader's next first page reflects it. Items whose feed cannot be told are skipped. */
  addFeedback(
    subscriber: string,
    items: { postUri: string; event: FeedbackEvent; feedContext: string | null; reqId: string | null }[],
    feedUri?: string,
  ): number {
    if (!this.d.interactions) return 0
    // @NOTE the item's own feedContext says best which list it came from; then the request's `feed`, then its reqId
    const named = feedUri ? this.byUri.get(feedUri) : undefined
    const withFeed = items.flatMap((i) => {
      const rkey = i.feedContext ? decodeFeedContext(i.feedContext)?.feed : undefined
      // @NOTE a request another serving process answered is not remembered here: its id names its feed
      const viaReq = i.reqId ? (this.requests.get(i.reqId) ?? this.d.feeds[feedIndexOf(i.reqId) ?? -1]?.uri) : undefined
      const feed = rkey
        ? this.d.feeds.find((f) => f.rkey === rkey)
        : named
          ? named
          : viaReq
            ? this.byUri.get(viaReq)
            : this.d.feeds.length === 1
              ? this.d.feeds[0]
              : undefined
      return feed ? [{ ...i, feed: feed.uri }] : []
    })
    return this.d.interactions.add(subscriber, withFeed)
  }

  /** The reader's recent "more"/"less" for a feed, with the nudges each one made to the reader's own agents. */
  feedback(feed: Feed, subscriber: string, limit = 50): FeedbackView[] {
    const { mix, base } = this.mixes.mixFor(feed, subscriber)
    const own = new Set(base.map((_, i) => mix.entries[i].label))
    return (this.d.interactions?.recent(subscriber, feed.uri, limit) ?? []).map((i) => ({ ...i, nudges: nudgesOf(i).filter((n) => own.has(n.label)) }))
  }

  undoFeedback(subscriber: string, id: number): StoredInteraction | null {
    return this.d.interactions?.undo(subscriber, id) ?? null
  }

  /**
   * "Why am I seeing this": an item's attribution in plain language; null
   * when it is not ours, or names a known mix that is neither a feed's
   * default nor the requester's own (a private mix's options are only
   * explained to its reader). A mix known to no one here (a preview's) is
   * explained by its agents' names alone.
   */
  explain(feedContext: string, requester: string | null): Explanation | null {
    const a = decodeFeedContext(feedContext)
    if (!a) return null
    const fp = a.fingerprint
    let mix: ResolvedMix | undefined
    if (this.explainable(fp, a.feed, requester)) mix = this.mixes.known(fp) ?? this.mixByFingerprint(fp)
    else if (this.mixes.seen(fp) || this.d.mixes.byFingerprint(fp)) return null
    const agents = this.d.host.agents
    return explain(a, (label) => {
      const e = mix?.entries.find((x) => x.label === label)
      const id = e?.inst.def.id ?? label.replace(/#\d+$/, '')
      const def = agents.get(id)
      if (!def) return null
      return { agent: id, title: def.title, options: e?.inst.rawOptions }
    })
  }

  /** Whether a mix fingerprint may be explained to the requester: a feed's default, or a mix of their own. */
  private explainable(fp: string, rkey: string | undefined, requester: string | null): boolean {
    if (this.d.feeds.some((f) => f.defaults.fingerprint === fp)) return true
    if (!requester) return false
    if (this.mixes.ownedBy(fp, requester)) return true
    const feeds = rkey ? this.d.feeds.filter((f) => f.rkey === rkey) : this.d.feeds
    return feeds.some((f) => {
      const e = this.mixes.mixFor(f, requester)
      return e.mix.fingerprint === fp || e.stored?.fingerprint === fp
    })
  }

  private mixByFingerprint(fp: string): ResolvedMix | undefined {
    const stored = this.d.mixes.byFingerprint(fp)
    if (!stored) return undefined
    const feed = this.byUri.get(stored.feed)
    return (feed && this.mixes.resolve(feed, stored.agents)) || undefined
  }
}

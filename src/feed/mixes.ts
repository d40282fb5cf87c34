import type { Feed } from '../feeds.ts'
import { applyNudges, strengthOf } from '../rank/feedback.ts'
import { withInterests } from '../rank/interests.ts'
import { resolveMix, type MixEntry, type ResolvedMix } from '../rank/mix.ts'
import type { StoredMix } from '../store/mixes.ts'
import { canonicalJson } from '../util/canonical.ts'
import { WorkQueue, yieldToLoop } from '../util/work-queue.ts'
import type { FeedServiceDeps } from './deps.ts'

export interface MixView {
  feed: string
  /** the entries as the reader set them (or the feed's default) */
  agents: MixEntry[]
  source: 'private' | 'record' | 'default'
  fingerprint: string
  updatedAt?: number
  /** weight changes from the reader's feedback, per entry of `agents` (0 = none) */
  nudges: number[]
}

/** The mix that applies to a reader of a feed, as worked out (see Mixes.mixFor). */
export interface Effective {
  mix: ResolvedMix
  stored?: StoredMix
  base: MixEntry[]
  nudges: number[]
  signature: string
  at: number
  /** the reader had interactions that still count when the entry was made (an overlay applies) */
  feedback?: boolean
}

/** The longest rest a preview takes after one step (a step that long is already an outlier). */
const PREVIEW_MAX_REST_MS = 50

/** Defaults of SKYSIFT_PREVIEW_CANDIDATES and SKYSIFT_PREVIEW_QUEUE. */
export const PREVIEW_DEFAULTS = { candidates: 2000, queue: 8 }
/** Nudges decay: a reader's effective mix is recomputed at least this often. */
const NUDGE_RECHECK_MS = 3_600_000

/** Entries a memo of the feed use-cases holds at most (then it starts again). */
const MAX_CACHED = 10_000

/** Sets `k` in a bounded memo (cleared when full) and returns `v`. */
export function remember<K, V>(m: Map<K, V>, k: K, v: V): V {
  if (m.size >= MAX_CACHED) m.clear()
  m.set(k, v)
  return v
}

/**
 * Readers' mixes: whose mix applies to a reader (their saved one, else the
 * feed's default; with the interests their app forwards and the nudges of
 * their feedback), and viewing, saving, deleting and previewing a mix.
 */
export class Mixes {
  private readonly d: FeedServiceDeps
  private readonly resolved = new Map<string, ResolvedMix>()
  private readonly byFingerprint = new Map<string, ResolvedMix>()
  private readonly effective = new Map<string, Effective>()
  private readonly anonymous = new Map<string, Effective>()
  /** previews run one at a time, each yielding the event loop between agents */
  private readonly previews: WorkQueue
  /** readers who were served a mix of their own (nudged by feedback) by its fingerprint, for explanations */
  private readonly ownMixes = new Map<string, Set<string>>()

  constructor(deps: FeedServiceDeps) {
    this.d = deps
    this.previews = new WorkQueue(deps.previewQueue ?? PREVIEW_DEFAULTS.queue)
    for (const f of deps.feeds) this.byFingerprint.set(f.defaults.fingerprint, f.defaults)
  }

  /** The mix that applies to a reader: their saved one (else the feed's default), nudged by their feedback. */
  mixFor(feed: Feed, subscriber: string | null, now = Date.now(), interests: readonly string[] = []): Effective {
    if (!subscriber) {
      let anon = this.anonymous.get(feed.uri)
      if (!anon)
        this.anonymous.set(
          feed.uri,
          (anon = { mix: feed.defaults, base: feed.defaults.agents, nudges: feed.defaults.agents.map(() => 0), signature: '', at: 0 }),
        )
      return anon
    }
    const key = `${subscriber} ${feed.uri}`
    const signature = `${this.d.interactions?.signature(subscriber, feed.uri) ?? ''}|${this.d.mixes.version(subscriber, feed.uri)}|${interests.join(',')}`
    const hit = this.effective.get(key)
    if (hit && hit.signature === signature && now - hit.at < NUDGE_RECHECK_MS) return hit
    const stored = this.d.mixes.effective(subscriber, feed.uri)
    let base = feed.defaults.agents
    let mix = feed.defaults
    if (stored) {
      const own = this.resolve(feed, stored.agents)
      if (own) {
        base = stored.agents
        mix = own
      }
    }
    // the interests the reader's app forwards: a cold start for readers without a mix, or a `topics` entry left empty
    const interested = withInterests(base, interests, mix !== feed.defaults)
    if (interested !== base) {
      const withTopics = this.resolve(feed, interested)
      if (withTopics) {
        base = interested
        mix = withTopics
      }
    }
    let nudges = base.map(() => 0)
    const acts = this.d.interactions?.active(subscriber, feed.uri, now) ?? []
    if (acts.some((a) => strengthOf(a.event) !== 0)) {
      const labels = new Map(base.map((_, i) => [mix.entries[i].label, i]))
      const applied = applyNudges(base, labels, acts, now)
      if (applied.deltas.some((d) => d !== 0)) {
        const nudged = this.resolve(feed, applied.entries)
        if (nudged) {
          mix = nudged
          nudges = applied.deltas
        }
      }
    }
    // @NOTE whatever the reader was given (their own mix, a record's, with interests or nudges) is theirs to have explained
    if (mix !== feed.defaults) {
      const owners = this.ownMixes.get(mix.fingerprint) ?? remember(this.ownMixes, mix.fingerprint, new Set<string>())
      if (owners.size < 100) owners.add(subscriber)
    }
    return remember(this.effective, key, { mix, stored, base, nudges, signature, at: now, feedback: acts.length > 0 })
  }

  /** A mix of a feed resolved (memoized), or null when it is no longer valid (then the default applies). */
  resolve(feed: Feed, agents: MixEntry[]): ResolvedMix | null {
    const key = `${feed.uri} ${canonicalJson(agents)}`
    const hit = this.resolved.get(key)
    if (hit) return hit
    try {
      const mix = resolveMix(this.d.host, agents, feed.base)
      remember(this.byFingerprint, mix.fingerprint, mix)
      return remember(this.resolved, key, mix)
    } catch (err) {
      // an agent was removed or changed its options since the mix was saved: fall back to the default
      this.d.log.warn({ feed: feed.rkey, err: (err as Error).message }, 'saved mix no longer valid; using default')
      return null
    }
  }

  /** A mix resolved here before, by fingerprint. */
  known(fingerprint: string): ResolvedMix | undefined {
    return this.byFingerprint.get(fingerprint)
  }

  /** Whether a fingerprint names a mix seen here: resolved before, or served to a reader as their own. */
  seen(fingerprint: string): boolean {
    return this.byFingerprint.has(fingerprint) || this.ownMixes.has(fingerprint)
  }

  /** Whether a reader was served the mix as their own. */
  ownedBy(fingerprint: string, reader: string): boolean {
    return this.ownMixes.get(fingerprint)?.has(reader) ?? false
  }

  /** What getMix answers. */
  viewMix(feed: Feed, subscriber: string): MixView {
    const e = this.mixFor(feed, subscriber)
    if (e.stored) {
      return {
        feed: feed.uri,
        agents: e.stored.agents,
        source: e.stored.source,
        fingerprint: e.mix.fingerprint,
        updatedAt: e.stored.updatedAt,
        nudges: e.nudges,
      }
    }
    return { feed: feed.uri, agents: e.base, source: 'default', fingerprint: e.mix.fingerprint, nudges: e.nudges }
  }

  /** Every feed where the reader has a saved mix. */
  listMixes(subscriber: string): MixView[] {
    return this.d.feeds.filter((f) => this.d.mixes.effective(subscriber, f.uri)).map((f) => this.viewMix(f, subscriber))
  }

  /** Validates and saves a private mix (throws FieldError naming the bad field). */
  async putMix(feed: Feed, subscriber: string, agents: unknown): Promise<MixView> {
    const mix = resolveMix(this.d.host, agents, feed.base)
    this.d.onReader?.(subscriber)
    this.d.mixes.put({ subscriber, feed: feed.uri, source: 'private', agents: mix.agents, fingerprint: mix.fingerprint })
    remember(this.byFingerprint, mix.fingerprint, mix)
    await this.d.instances
      ?.register(mix)
      .catch((err) => this.d.log.warn({ err: (err as Error).message }, 'could not register agent instances; they are scored at refresh'))
    return this.viewMix(feed, subscriber)
  }

  /** Forgets the reader's private mix (a public record, if any, then applies). */
  deleteMix(feed: Feed, subscriber: string): boolean {
    return this.d.mixes.delete(subscriber, feed.uri, 'private')
  }

  /**
   * The first page a mix would produce for this reader, without saving or
   * keeping anything: ranked over the newest SKYSIFT_PREVIEW_CANDIDATES
   * candidates, one preview at a time, taking at most about half of the
   * event loop while other requests wait. Rejects with QueueFullError when
   * SKYSIFT_PREVIEW_QUEUE previews already wait, and with FieldError for a bad mix.
   */
  async previewMix(
    feed: Feed,
    subscriber: string | null,
    agents: unknown,
    limit: number,
  ): Promise<{ feed: { post: string; feedContext: string }[]; fingerprint: string }> {
    const mix = resolveMix(this.d.host, agents, feed.base, { keep: false })
    return this.previews.run(async () => {
      const ctx = mix.personal && subscriber && this.d.graph ? this.d.graph.context(subscriber) : undefined
      let stepAt = performance.now()
      const pause = async () => {
        // @NOTE previews take at most about half of the event loop: after each step a rest as long (short steps only yield)
        const busy = performance.now() - stepAt
        await (busy < 1 ? yieldToLoop() : new Promise((resolve) => setTimeout(resolve, Math.min(busy, PREVIEW_MAX_REST_MS))))
        stepAt = performance.now()
      }
      const items = await this.d.lists.preview(feed, mix, {
        limit,
        maxCandidates: this.d.previewCandidates ?? PREVIEW_DEFAULTS.candidates,
        pause,
        subscriber: ctx,
      })
      return { feed: items.map((i) => ({ post: i.uri, feedContext: i.context })), fingerprint: mix.fingerprint }
    })
  }
}

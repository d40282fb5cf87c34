/**
 * Normalized events: what every source (Jetstream, relay firehose, replay)
 * decodes into, and what flows through the queues. Small, JSON-safe, and
 * validated once at the edge (src/ingest/events.ts) so later stages can trust them.
 */

export const COLLECTIONS = {
  post: 'app.bsky.feed.post',
  like: 'app.bsky.feed.like',
  repost: 'app.bsky.feed.repost',
  follow: 'app.bsky.graph.follow',
  /** a subscriber's public mix for one feed (lexicons/app/skysift/feed/mix.json) */
  mix: 'app.skysift.feed.mix',
  block: 'app.bsky.graph.block',
  /** a subscription to a block list (subject: the list's at-uri) */
  listblock: 'app.bsky.graph.listblock',
  /** a member of a list, in the list owner's repo */
  listitem: 'app.bsky.graph.listitem',
  /** an author's consent to algorithmic feeds (record key `self`) */
  visibility: 'app.bsky.actor.contentVisibilityDeclaration',
  /** the author's profile (record key `self`): its self-labels */
  profile: 'app.bsky.actor.profile',
} as const

/** The collection of lists (block lists are lists with the moderation purpose). */
export const LIST_COLLECTION = 'app.bsky.graph.list'

/** The collection of feed generator records a mix record points at. */
export const FEED_GENERATOR_COLLECTION = 'app.bsky.feed.generator'

/** Collections the ingest asks its source for. */
export const WANTED_COLLECTIONS: string[] = Object.values(COLLECTIONS)

export type EmbedKind = 'images' | 'video' | 'external' | 'record' | 'recordWithMedia'

export interface PostEvent {
  t: 'post'
  uri: string
  cid: string
  author: string
  /** ms since epoch: the earlier of the record's createdAt and the event time */
  createdAt: number
  text: string
  langs: string[]
  replyRoot: string | null
  replyParent: string | null
  embed: EmbedKind | null
  /** at-uri of a quoted record, if any */
  quote: string | null
  /** hashtags from facets and inline #words, lower-cased, unique */
  tags: string[]
  /** self-label values */
  labels: string[]
  /**
   * the version of this record on the network (as `rev` of MixEvent): a late
   * original never replaces an edit. Absent only in batches queued by an
   * older Skysift, which are applied as they arrive.
   */
  rev?: string
}

export interface EngagementEvent {
  t: 'like' | 'repost'
  uri: string
  author: string
  subject: string
}

export interface FollowEvent {
  t: 'follow'
  uri: string
  author: string
  subject: string
}

export interface DeleteEvent {
  t: 'delete'
  uri: string
  collection: string
  /** the repo revision (a TID) of the commit that deleted the record, when the source said (records updated in place order by it) */
  rev?: string
}

/** One entry of a mix record, as written (validated for shape, not against the agent catalog). */
export interface MixRecordEntry {
  agent: string
  weight: number
  options?: Record<string, unknown>
}

/** A created or updated `app.skysift.feed.mix` record. Deletes arrive as DeleteEvent. */
export interface MixEvent {
  t: 'mix'
  uri: string
  author: string
  /** at-uri of the feed generator record */
  feed: string
  agents: MixRecordEntry[]
  /** ms since epoch: the record's createdAt, never later than when the network saw it */
  createdAt: number
  /**
   * the repo revision (a TID) of the commit that wrote this version, or, when
   * the source did not say, the event's time as a TID (eventRev): an update
   * never overwrites a later one of the same record
   */
  rev: string
}

export interface AccountEvent {
  t: 'account'
  did: string
  active: boolean
  status: string | null
  /**
   * the event's place in the network's order: its time as a TID (eventRev),
   * since an account's status has no repo revision. Absent only in batches
   * queued by an older Skysift, which are applied as they arrive.
   */
  rev?: string
}

/** A block (`app.bsky.graph.block`): `author` blocks `subject`. */
export interface BlockEvent {
  t: 'block'
  uri: string
  author: string
  subject: string
}

/** A subscription to a block list (`app.bsky.graph.listblock`). */
export interface ListBlockEvent {
  t: 'listblock'
  uri: string
  author: string
  /** at-uri of the `app.bsky.graph.list` */
  list: string
}

/** A list member (`app.bsky.graph.listitem`, in the list owner's repo). */
export interface ListItemEvent {
  t: 'listitem'
  uri: string
  /** at-uri of the list */
  list: string
  subject: string
}

/**
 * An author's consent state from one of their `self` records: the
 * `app.bsky.actor.contentVisibilityDeclaration` (`hide`) or the
 * `!no-unauthenticated` self-label of their `app.bsky.actor.profile`
 * (`noUnauthenticated`). A deleted record arrives as DeleteEvent.
 */
export interface ConsentEvent {
  t: 'consent'
  did: string
  kind: 'visibility' | 'profile'
  /** hideFromAlgorithmicRecommendations (visibility) or the `!no-unauthenticated` self-label (profile) */
  value: boolean
  /** the commit's repo revision; '' when the source did not say */
  rev: string
}

/**
 * Not from a source: a reader's graph backfilled from their repo ends in
 * this (the batch's last event), so the writer notes when their graph landed.
 */
export interface ReaderEvent {
  t: 'reader'
  did: string
  /** ms since epoch the backfill fetched the records at */
  backfilledAt: number
}

export type IngestEvent =
  | PostEvent
  | EngagementEvent
  | FollowEvent
  | MixEvent
  | DeleteEvent
  | AccountEvent
  | BlockEvent
  | ListBlockEvent
  | ListItemEvent
  | ConsentEvent
  | ReaderEvent

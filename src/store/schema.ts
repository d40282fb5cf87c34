import { sql } from 'drizzle-orm'
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

/**
 * Posts in the candidate window, with engagement counts kept by the writer.
 * `id` is never reused (AUTOINCREMENT) and an edit stores the post under a new
 * id, so everything but the counts is immutable for a given id: readers cache
 * parsed posts by id. (The migrations add WITHOUT ROWID layouts drizzle cannot
 * declare: see drizzle/0003_perf_layout.sql.)
 */
export const posts = sqliteTable(
  'posts',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    uri: text('uri').notNull().unique(),
    cid: text('cid').notNull(),
    author: text('author').notNull(),
    createdAt: integer('created_at').notNull(),
    indexedAt: integer('indexed_at').notNull(),
    text: text('text').notNull(),
    /** JSON array of primary language subtags */
    langs: text('langs').notNull(),
    replyRoot: text('reply_root'),
    replyParent: text('reply_parent'),
    embed: text('embed'),
    quote: text('quote'),
    /** JSON array */
    tags: text('tags').notNull(),
    /** JSON array of self-label values */
    labels: text('labels').notNull(),
    likeCount: integer('like_count').notNull().default(0),
    repostCount: integer('repost_count').notNull().default(0),
    /** the version stored (the commit's repo revision, see PostEvent.rev): an older one never replaces it */
    rev: text('rev').notNull().default(''),
  },
  // @NOTE the counts are in the created_at index so ranking reads its candidates' ids and counts from the index alone
  (t) => [index('posts_created_at').on(t.createdAt, t.likeCount, t.repostCount), index('posts_author').on(t.author)],
)

/**
 * Every like and repost the writer has counted (or is holding for a post
 * not stored yet), so a replay is not counted twice and an unlike is counted
 * down once. The counts themselves are in `posts`. `key` is a 64-bit hash of
 * the engagement's URI (engagementKey in writer.ts): one integer b-tree, with
 * rows a third the size of a URI-keyed row, and no index on `subject` (the
 * likes of a post not stored yet wait in `waiting_engagements` instead).
 */
export const engagements = sqliteTable('engagements', {
  key: integer('key').primaryKey(),
  kind: text('kind', { enum: ['like', 'repost'] }).notNull(),
  /** the post liked or reposted */
  subject: text('subject').notNull(),
})

/**
 * Who liked or reposted what, in integers (the like graph): `subject` is the
 * post's postKey, `actor` the account's actorKey (53-bit hashes of the URI
 * and the DID, src/util/uri-hash.ts), `kind` 0 for a like and 1 for a repost. A row lives exactly as long as its row in
 * `engagements`, so the graph covers the feed window. WITHOUT ROWID (see
 * drizzle/0008_like_graph.sql): both directions are integer b-trees.
 */
export const likeGraph = sqliteTable(
  'like_graph',
  {
    subject: integer('subject').notNull(),
    actor: integer('actor').notNull(),
    kind: integer('kind').notNull(),
  },
  (t) => [primaryKey({ columns: [t.subject, t.actor, t.kind] }), index('like_graph_actor').on(t.actor, t.kind, t.subject)],
)

/**
 * The like graph's newest changes, appended in the order they were made and
 * not yet folded into `like_graph` (src/store/like-graph.ts): appending is
 * all the writer does per like, and the store folds the log into the keyed
 * table in bulk, sorted, every LIKE_LOG_FOLD_ROWS rows. `op` is a link (0 a
 * like, 1 a repost), an unlink (2, 3) or the drop of every row of `subject`
 * (4, `actor` 0). Readers read `like_graph` and replay the log.
 */
export const likeLog = sqliteTable('like_log', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  subject: integer('subject').notNull(),
  actor: integer('actor').notNull(),
  op: integer('op').notNull(),
})

/**
 * Likes and reposts of posts not stored (yet), by post: the post counts them
 * when it is stored, and they go. `key` is the engagement's key; 0 holds `n`
 * engagements a purged post had counted (its author's account went
 * inactive), so the post counts them again if it comes back. WITHOUT ROWID
 * (see drizzle/0007_compact_engagements.sql): a post's rows are one range.
 */
export const waitingEngagements = sqliteTable(
  'waiting_engagements',
  {
    subject: text('subject').notNull(),
    key: integer('key').notNull(),
    kind: text('kind', { enum: ['like', 'repost'] }).notNull(),
    n: integer('n').notNull().default(1),
  },
  (t) => [primaryKey({ columns: [t.subject, t.key, t.kind] })],
)

/** Follows made by subscribers (the only follow graph personal agents need). */
export const follows = sqliteTable(
  'follows',
  {
    uri: text('uri').primaryKey(),
    author: text('author').notNull(),
    subject: text('subject').notNull(),
  },
  (t) => [index('follows_author_subject').on(t.author, t.subject), index('follows_subject').on(t.subject)],
)

/** Deleted records: a create that arrives after its delete stays deleted. */
export const tombstones = sqliteTable('tombstones', {
  uri: text('uri').primaryKey(),
  at: integer('at').notNull(),
})

/**
 * The newest status the network gave an account ('active', or why it is not:
 * deleted, takendown, suspended, deactivated), with that event's place in the
 * network's order (AccountEvent.rev): an older event never overrides it.
 */
export const accountStatus = sqliteTable(
  'account_status',
  {
    did: text('did').primaryKey(),
    status: text('status').notNull(),
    rev: text('rev').notNull(),
  },
  // @NOTE retention forgets 'active' rows once no batch can be that late (by rev, which orders by time)
  (t) => [index('account_status_rev').on(t.rev)],
)

/**
 * Posts of accounts that are not active, kept aside instead of `posts` (same
 * columns, newest version by `rev`): they come back when a newer event says
 * the account is active. Their likes and reposts wait in `waiting_engagements`.
 */
export const withheldPosts = sqliteTable(
  'withheld_posts',
  {
    uri: text('uri').primaryKey(),
    cid: text('cid').notNull(),
    author: text('author').notNull(),
    createdAt: integer('created_at').notNull(),
    text: text('text').notNull(),
    langs: text('langs').notNull(),
    replyRoot: text('reply_root'),
    replyParent: text('reply_parent'),
    embed: text('embed'),
    quote: text('quote'),
    tags: text('tags').notNull(),
    labels: text('labels').notNull(),
    rev: text('rev').notNull(),
  },
  (t) => [index('withheld_posts_author').on(t.author), index('withheld_posts_created_at').on(t.createdAt)],
)

/**
 * Scores of option-independent agent instances, computed once per post. null = drop.
 * Keyed post first (WITHOUT ROWID): a post's scores are written, read and deleted together, in one place.
 */
export const agentScores = sqliteTable(
  'agent_scores',
  {
    instance: text('instance').notNull(),
    postUri: text('post_uri').notNull(),
    score: real('score'),
  },
  (t) => [primaryKey({ columns: [t.postUri, t.instance] })],
)

/** Subscribers' mixes. `source` is 'private' (XRPC) or 'record' (their repo). */
export const mixes = sqliteTable(
  'mixes',
  {
    subscriber: text('subscriber').notNull(),
    feed: text('feed').notNull(),
    source: text('source', { enum: ['private', 'record'] }).notNull(),
    agents: text('agents').notNull(),
    fingerprint: text('fingerprint').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.subscriber, t.feed, t.source] })],
)

/**
 * One ranked list per (feed, mix fingerprint) build; kept a while so cursors stay valid. The items are one JSON
 * value (written once, never changed): a build stores one row, not a row per item. Posts deleted after the build
 * are left out when a page is read (see `postDeletions`).
 */
export const feedSnapshots = sqliteTable(
  'feed_snapshots',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    feed: text('feed').notNull(),
    fingerprint: text('fingerprint').notNull(),
    builtAt: integer('built_at').notNull(),
    size: integer('size').notNull(),
    buildMs: real('build_ms').notNull(),
    /** unused since items are one value (kept: SQLite cannot drop a column cheaply) */
    version: integer('version').notNull().default(0),
    /** JSON array of [post uri, score, feedContext], best first (rank = position + 1) */
    items: text('items').notNull().default('[]'),
  },
  (t) => [index('feed_snapshots_key').on(t.feed, t.fingerprint, t.id)],
)

/**
 * Every change to `posts` (insert and delete, by triggers; count changes, by the writer): readers that keep posts in memory
 * (ranking) read what changed since they last looked instead of every candidate again. Retention trims the old end.
 */
export const postChanges = sqliteTable('post_changes', {
  seq: integer('seq').primaryKey(),
  postId: integer('post_id').notNull(),
})

/**
 * URIs of deleted posts, appended by a trigger on `posts`: a server holding ranked lists in memory leaves these
 * out. Retention trims the old end.
 */
export const postDeletions = sqliteTable('post_deletions', {
  seq: integer('seq').primaryKey(),
  uri: text('uri').notNull(),
})

/** Ingest cursors, one per source. */
export const cursors = sqliteTable('cursors', {
  source: text('source').primaryKey(),
  cursor: text('cursor').notNull(),
  eventTime: integer('event_time'),
  updatedAt: integer('updated_at').notNull(),
})

/**
 * Batches Redis has accepted but the store has not applied yet, with the
 * cursor to read them again from. The ingest adds a row when it saves the
 * cursor past a batch; the writer removes it in the batch's transaction.
 * When Redis comes back empty (restarted without persistence), the ingest
 * rewinds to the oldest row of its source, so nothing Redis held is lost.
 */
export const pendingBatches = sqliteTable(
  'pending_batches',
  {
    id: text('id').primaryKey(),
    source: text('source').notNull(),
    resumeFrom: text('resume_from').notNull(),
    at: integer('at').notNull(),
  },
  (t) => [index('pending_batches_source').on(t.source, t.at)],
)

/** Malformed input kept for inspection (bounded). */
export const rejectedEvents = sqliteTable(
  'rejected_events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    source: text('source').notNull(),
    reason: text('reason').notNull(),
    payload: text('payload').notNull(),
    at: integer('at').notNull(),
  },
  (t) => [index('rejected_events_at').on(t.at)],
)

/** Running counters (events stored by kind, rejects…) for status and metrics. */
export const counters = sqliteTable('counters', {
  name: text('name').primaryKey(),
  value: integer('value').notNull(),
})

/** Agents added at run time: uploaded (sandboxed) code and remote endpoints, with the admin's decision. */
export const agents = sqliteTable('agents', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: ['sandboxed', 'remote'] }).notNull(),
  status: text('status', { enum: ['pending', 'approved', 'rejected'] }).notNull(),
  /** JavaScript source of a sandboxed agent */
  source: text('source'),
  /** base URL of a remote agent */
  url: text('url'),
  /** JSON: per-agent salt, rawDids, allowPrivateNetwork… */
  config: text('config').notNull(),
  /** JSON: id, version, title, description, author, needs, options schema, as loaded */
  meta: text('meta').notNull(),
  /** who submitted it (a DID, or "admin") */
  submittedBy: text('submitted_by').notNull(),
  submittedAt: integer('submitted_at').notNull(),
  decidedAt: integer('decided_at'),
  note: text('note'),
  /** bumps on every change, so other processes can tell they are behind */
  revision: integer('revision').notNull().default(1),
})

/**
 * Subscribers' public mix records (app.skysift.feed.mix), every one still in
 * their repo, so a delete can fall back to the previous record. The newest
 * per (author, feed) by created_at (ties: larger uri, i.e. larger rkey) is
 * copied into `mixes` as the 'record' mix.
 */
export const mixRecords = sqliteTable(
  'mix_records',
  {
    uri: text('uri').primaryKey(),
    author: text('author').notNull(),
    feed: text('feed').notNull(),
    /** JSON array of mix entries, as written */
    agents: text('agents').notNull(),
    createdAt: integer('created_at').notNull(),
    /** repo revision (TID) of the commit that wrote this version; '' when unknown */
    rev: text('rev').notNull().default(''),
  },
  (t) => [index('mix_records_author_feed').on(t.author, t.feed, t.createdAt)],
)

/** Readers' feedback (sendInteractions): "show more", "show less", "seen". */
export const interactions = sqliteTable(
  'interactions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    subscriber: text('subscriber').notNull(),
    feed: text('feed').notNull(),
    postUri: text('post_uri').notNull(),
    /** a short name (FEEDBACK_EVENTS), or an event this version does not know, as sent */
    event: text('event').notNull(),
    feedContext: text('feed_context'),
    reqId: text('req_id'),
    at: integer('at').notNull(),
    undone: integer('undone').notNull().default(0),
  },
  (t) => [
    index('interactions_reader').on(t.subscriber, t.feed, t.id),
    index('interactions_at').on(t.at),
    // @NOTE "seen" is kept once per item: the AppView reports every view, and the insert skips a repeat through this index
    uniqueIndex('interactions_seen').on(t.subscriber, t.feed, t.postUri).where(sql`event = 'seen'`),
  ],
)

/**
 * Per reader and feed: how many interactions are stored (`n`) and a number that changes with every insert, delete
 * and undo (`version`), kept by triggers on `interactions` (drizzle/0009_interaction_bounds.sql), so the writer
 * keeps a reader's history at its cap and a page load tells whether the feedback changed by one primary-key read.
 */
export const interactionState = sqliteTable(
  'interaction_state',
  {
    subscriber: text('subscriber').notNull(),
    feed: text('feed').notNull(),
    n: integer('n').notNull().default(0),
    version: integer('version').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.subscriber, t.feed] })],
)

/** Web sign-in sessions: the cookie carries a random id, stored here hashed. */
export const webSessions = sqliteTable(
  'web_sessions',
  {
    idHash: text('id_hash').primaryKey(),
    did: text('did').notNull(),
    handle: text('handle'),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('web_sessions_did').on(t.did), index('web_sessions_expires').on(t.expiresAt)],
)

/** atproto OAuth state between the redirect to the PDS and the callback. */
export const oauthStates = sqliteTable('oauth_states', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  expiresAt: integer('expires_at').notNull(),
})

/** atproto OAuth sessions (refresh tokens and DPoP keys: treat the SQLite file as secret). */
export const oauthSessions = sqliteTable('oauth_sessions', {
  did: text('did').primaryKey(),
  value: text('value').notNull(),
  updatedAt: integer('updated_at').notNull(),
})

/** Secrets the server generates for itself (the cookie signing key when none is configured). */
export const webSecrets = sqliteTable('web_secrets', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  createdAt: integer('created_at').notNull(),
})

/**
 * Readers seen (signed-in requests, mixes, web sign-in): whose follows,
 * blocks and likes the writer keeps, and whose graph was backfilled from
 * their repo. Readers not seen for SKYSIFT_READER_RETENTION_DAYS are forgotten.
 */
export const readers = sqliteTable(
  'readers',
  {
    did: text('did').primaryKey(),
    firstSeen: integer('first_seen').notNull(),
    lastSeen: integer('last_seen').notNull(),
    /** when their graph was backfilled from their repo (null: not yet) */
    backfilledAt: integer('backfilled_at'),
    /** failed backfill attempts in a row */
    attempts: integer('attempts').notNull().default(0),
    /** a backfill is not tried before this */
    nextTryAt: integer('next_try_at').notNull().default(0),
    /** a backfill under way (by some process) until this */
    claimedUntil: integer('claimed_until').notNull().default(0),
  },
  (t) => [index('readers_last_seen').on(t.lastSeen), index('readers_pending').on(t.backfilledAt, t.nextTryAt)],
)

/** Blocks where either side is a reader (`author` blocks `subject`). */
export const blocks = sqliteTable(
  'blocks',
  {
    uri: text('uri').primaryKey(),
    author: text('author').notNull(),
    subject: text('subject').notNull(),
  },
  (t) => [index('blocks_author').on(t.author), index('blocks_subject').on(t.subject)],
)

/** Readers' subscriptions to block lists. */
export const listBlocks = sqliteTable(
  'list_blocks',
  {
    uri: text('uri').primaryKey(),
    author: text('author').notNull(),
    list: text('list').notNull(),
  },
  (t) => [index('list_blocks_author').on(t.author), index('list_blocks_list').on(t.list)],
)

/** Members of block lists some reader subscribes to. */
export const listItems = sqliteTable(
  'list_items',
  {
    uri: text('uri').primaryKey(),
    list: text('list').notNull(),
    subject: text('subject').notNull(),
  },
  (t) => [index('list_items_list').on(t.list, t.subject)],
)

/** Readers' own recent likes (the newest SKYSIFT_BACKFILL_MAX_RECORDS per reader are kept). */
export const readerLikes = sqliteTable(
  'reader_likes',
  {
    uri: text('uri').primaryKey(),
    author: text('author').notNull(),
    subject: text('subject').notNull(),
    /** ms since epoch (the like's record key time) */
    at: integer('at').notNull(),
  },
  (t) => [index('reader_likes_author').on(t.author, t.at)],
)

/**
 * Authors' consent: `hide` from their app.bsky.actor.contentVisibilityDeclaration
 * (hideFromAlgorithmicRecommendations), `no_unauth` from the `!no-unauthenticated`
 * self-label on their profile, each with the repo revision that set it (newer wins;
 * a deleted record sets false at the delete's revision, which then acts as its tombstone).
 */
export const authorConsent = sqliteTable(
  'author_consent',
  {
    did: text('did').primaryKey(),
    hide: integer('hide').notNull().default(0),
    hideRev: text('hide_rev').notNull().default(''),
    noUnauth: integer('no_unauth').notNull().default(0),
    profileRev: text('profile_rev').notNull().default(''),
    /** when a flag last changed (readers keeping the flags in memory read the rows changed since they last looked) */
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('author_consent_updated').on(t.updatedAt)],
)

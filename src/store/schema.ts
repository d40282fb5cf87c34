import { index, integer, primaryKey, real, sqliteTable, text } from 'drizzle-orm/sqlite-core'

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

/** Agent instances (agent + options) that score workers pre-compute. */
export const agentInstances = sqliteTable('agent_instances', {
  key: text('key').primaryKey(),
  agent: text('agent').notNull(),
  options: text('options').notNull(),
  lastUsed: integer('last_used').notNull(),
})

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
    event: text('event', { enum: ['more', 'less', 'seen'] }).notNull(),
    feedContext: text('feed_context'),
    reqId: text('req_id'),
    at: integer('at').notNull(),
    undone: integer('undone').notNull().default(0),
  },
  (t) => [index('interactions_reader').on(t.subscriber, t.feed, t.id), index('interactions_at').on(t.at)],
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

/*
 * Serving nodes that need only Redis (edge nodes): what the node next to the SQLite file (the primary) publishes to
 * Redis, and what edge nodes send back. Every key starts with the deployment's queue prefix (SKYSIFT_QUEUE_PREFIX), so
 * a hash-tagged prefix (`{skysift}`) keeps them in one Redis Cluster slot with the queues.
 *
 * Published by the primary:
 * - `snap:<id>`: a ranked list as served (EdgeSnapshot, JSON), expiring with the snapshot TTL. Snapshots are immutable:
 *   an id names one list for good (SQLite AUTOINCREMENT), so edges cache them by id.
 * - `anon`: a hash, feed URI → the id of the snapshot anonymous readers (and signed-in readers the primary has not
 *   placed yet) are served.
 * - `reader:<did>`: a hash per signed-in reader: `f:<feed URI>` → the snapshot id their first page is read from (their
 *   mix, personal list or feedback overlay), and `x` → JSON array of the authors they must not be shown (blocks either
 *   way). Expires READER_TTL_S after the primary last placed the reader.
 * - `changes`: a stream of what takes posts out of pages already published: deletions (`k` = `del`, `uri`) and
 *   consent (`k` = `consent`, `did`, `hide` and `nu` (no unauthenticated readers) as `0`/`1`). Trimmed by age (entries
 *   older than the snapshot TTL go: no live snapshot is older), so an edge that reads it from the start knows every
 *   deletion a published snapshot may still hold.
 * - `consent`: a hash, author DID → `<hide><nu>` (`10`, `01` or `11`) for every author with a consent flag set, kept
 *   with `changes` (an author whose flags are cleared leaves it): an edge starting reads it before `changes`, since a
 *   flag set longer ago than `changes` keeps entries is in no entry.
 * - `meta`: a hash: `cursor` (the secret paging cursors are signed with, so a cursor from one node pages on any other),
 *   `primary` (ms the primary last said it was alive, every second), `epoch` (changes when the primary republishes
 *   everything, e.g. after Redis was emptied).
 *
 * Sent by edges, drained by the primary (consumer group EDGE_GROUP, one entry handled by one primary process):
 * - `touch`: a stream of first pages served: `feed`, `did` (empty for anonymous), `int` (interests, comma-joined). The
 *   primary places the reader again (the lists read refresh when stale, overlays follow feedback) and publishes what
 *   changed. An edge sends one per (reader, feed) at most every TOUCH_MIN_MS.
 * - `writes`: a stream of writes an edge accepted for the primary: `kind` = `interactions`, `did`, `body` (the
 *   request body as validated by the edge's lexicons). An entry is deleted once the primary has handled it, and
 *   nothing the primary has not handled is trimmed. `writes:size` counts the characters of the bodies waiting (the
 *   edge adds with the entry, the primary takes off as it deletes it): edges refuse more past
 *   MAX_WRITES_BACKLOG_CHARS.
 * - `usage`: a hash, agent id → items it moved in pages edges served, added with HINCRBY and folded into the store
 *   by the primary.
 */

/** An entry of a published snapshot: the post's URI and its feedContext. */
export type EdgeItem = [uri: string, context: string]

/** A ranked list as edges serve it (the value of `snap:<id>`). */
export interface EdgeSnapshot {
  /** the feed URI */
  feed: string
  /** the list key cursors are bound to (as the primary binds them) */
  key: string
  /** when it was built (ms since the epoch) */
  builtAt: number
  /** the post_deletions row the items were checked against (deletions logged after it are read from `changes`) */
  checkedAt: number
  items: EdgeItem[]
}

/** The consumer group the primary reads `touch` and `writes` with. */
export const EDGE_GROUP = 'primary'
/** A reader's placement expires this long after the primary last made it. */
export const READER_TTL_S = 7 * 24 * 3600
/** An edge tells the primary about a (reader, feed) first page at most this often. */
export const TOUCH_MIN_MS = 1000
/** The primary says it is alive (`meta` `primary`) this often. */
export const PRIMARY_BEAT_MS = 1000
/** Characters of `writes` bodies waiting for the primary past which edges refuse more (a primary down for long). */
export const MAX_WRITES_BACKLOG_CHARS = 64 * 1024 * 1024
/** `touch` keeps about this many entries (older ones are dropped: a touch is a hint, the next one repeats it). */
export const TOUCH_MAXLEN = 100_000

/** The Redis keys of the edge contract under a queue prefix. */
export function edgeKeys(prefix: string) {
  const p = `${prefix}:edge:`
  return {
    snapshot: (id: number) => `${p}snap:${id}`,
    anon: `${p}anon`,
    reader: (did: string) => `${p}reader:${did}`,
    changes: `${p}changes`,
    consent: `${p}consent`,
    meta: `${p}meta`,
    touch: `${p}touch`,
    writes: `${p}writes`,
    writesSize: `${p}writes:size`,
    usage: `${p}usage`,
  }
}

/** The field of `reader:<did>` naming the snapshot a reader's first page of a feed is read from. */
export const readerFeedField = (feedUri: string) => `f:${feedUri}`
/** The field of `reader:<did>` listing the authors the reader must not be shown (JSON array). */
export const READER_EXCLUDED_FIELD = 'x'
/**
 * The field of `reader:<did>` holding the interests (comma-joined) the reader was last placed with on a feed: the
 * primary places the reader again with them when their mix or feedback changes. Edges need not read it.
 */
export const readerInterestsField = (feedUri: string) => `i:${feedUri}`
/** `x` lists at most this many authors (a reader blocking more is shown posts of the rest by edges). */
export const MAX_EXCLUDED_AUTHORS = 10_000

/** What an ingest process reports about itself (to its parent over IPC, and to Redis for `skysift status` and the admin page). */

/**
 * What a source is doing, for health, status and the admin page: `connecting`
 * (first try), `connected`, `retrying` (after a failed or dropped connection),
 * `reading` (a file), `finished` (a file read to its end), `stopped`.
 */
export interface SourceState {
  state: 'connecting' | 'connected' | 'retrying' | 'reading' | 'finished' | 'stopped'
  /** failed connection attempts in a row (0 when connected) */
  attempt: number
  /** when the next connection attempt is due (ms since the epoch), while retrying */
  nextTryAt: number | null
  /** the last connection error, kept until a connection succeeds */
  lastError: string | null
  /** when the state last changed (ms since the epoch) */
  since: number
}

/** An ingest's counters since it started. */
export interface IngestStats {
  received: number
  queued: number
  rejected: number
  batches: number
  lastCursor: number | null
  lastEventTime: number | null
  pausedForBackpressureMs: number
  redisErrors: number
  /** times Redis was found emptied and the source read again from the oldest batch not stored */
  rewinds: number
}

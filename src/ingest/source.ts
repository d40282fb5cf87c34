import type { IngestEvent } from '../contracts/events.ts'

/** One decoded input: an event (or null for ignored kinds) or a rejection, with its cursor. */
export type SourceItem =
  | { cursor: number; timeMs: number; event: IngestEvent | null }
  | { cursor: number | null; timeMs: number; rejected: string; payload: string }

/** Receives items in source order; awaiting it is the backpressure. */
export type Sink = (item: SourceItem) => Promise<void> | void

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

/** A fresh state record. */
export const sourceState = (state: SourceState['state']): SourceState => ({ state, attempt: 0, nextTryAt: null, lastError: null, since: Date.now() })

/** A stream of events from the network or a file. */
export interface Source {
  /** a stable name, used as the key of its saved cursor */
  readonly name: string
  /** what it is doing now */
  readonly status?: SourceState
  /** Runs until stop() (live sources) or the end of input (replay). Resumes after `cursor` when given. May run again after stop(). */
  run(sink: Sink, cursor: number | undefined): Promise<void>
  stop(): Promise<void>
}

/** Exponential backoff with jitter, capped. */
export function backoffMs(attempt: number, baseMs = 1000, maxMs = 60_000): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16))
  return Math.round(d / 2 + Math.random() * (d / 2))
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })

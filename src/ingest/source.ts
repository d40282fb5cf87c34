import type { IngestEvent } from '../contracts/events.ts'
import type { SourceState } from '../contracts/ingest.ts'

/** One decoded input: an event (or null for ignored kinds) or a rejection, with its cursor. */
export type SourceItem =
  | { cursor: number; timeMs: number; event: IngestEvent | null }
  | { cursor: number | null; timeMs: number; rejected: string; payload: string }

/** Receives items in source order; awaiting it is the backpressure. */
export type Sink = (item: SourceItem) => Promise<void> | void

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

/**
 * What the stages hand each other through the queues: the queue names, the
 * payload of each queue, and the job ids. Types and pure helpers only; the
 * BullMQ connections are in queues.ts.
 */
import type { IngestEvent } from './events.ts'

/** Queue names; the full Redis key is `<prefix>:<name>:…`. */
export const QUEUE = { events: 'events', store: 'store', refresh: 'refresh' } as const
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE]

/** BullMQ refuses ':' in custom ids. */
export const jobId = (...parts: (string | number)[]) => parts.join('_').replace(/[^A-Za-z0-9._-]/g, '-')

/** A batch of decoded events from one source, in source order (the `events` queue: ingest → score workers). */
export interface EventsJob {
  /** source + cursor range; also the job id, so re-sending a batch is a no-op */
  id: string
  source: string
  events: IngestEvent[]
  /** event time (ms) of the newest event */
  eventTime: number
}

/**
 * One agent's score for one post as it travels: a finite number (higher ranks
 * higher), 'drop' (the agent SDK's DROP), or null for no opinion.
 */
export type ScoreValue = number | 'drop' | null

/** A scored batch on its way to SQLite (the `store` queue: score workers and reader backfills → store writer). */
export interface StoreBatch {
  /** source + cursor range: the same batch always has the same id */
  id: string
  events: IngestEvent[]
  /** static agent scores as [post uri, agent instance key, score] (jobs queued before `postScores` existed, tests) */
  scores: [string, string, ScoreValue][]
  /** static agent scores as score workers send them (see PostScores) */
  postScores?: PostScores
  /** event time (ms) of the newest event in the batch */
  eventTime: number
}

/**
 * A batch's static agent scores, one row per scored post: `keys` names the
 * agent instances once, and a row is the post's index in the batch's
 * `events` followed by one score per key. A store job is serialized twice
 * (score worker, store writer) and passes through Redis, so this leaves out
 * the post URI and instance key that every [uri, key, score] repeats.
 */
export interface PostScores {
  keys: string[]
  rows: [number, ...ScoreValue[]][]
}

/** A list to build (the `refresh` queue: serving nodes → refresh workers). */
export interface RefreshJob {
  feed: string
  fingerprint: string
  /** the subscriber's mix entries (validated again by the worker) */
  agents: unknown
  /** the reader, for a personal list */
  subscriber?: string | null
  /** build even if the newest list is fresh: it was ranked without some of the mix's agents (see ListBuilder.ranksFully) */
  complete?: boolean
}

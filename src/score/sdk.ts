import type { z } from 'zod'
import type { EmbedKind } from '../contracts/events.ts'
import type { ScoreValue } from '../contracts/jobs.ts'
import { postKey } from '../util/uri-hash.ts'

/**
 * The agent SDK. An agent is a pure batch function: posts in, one score per
 * post out. The host supplies every piece of data and the clock; an agent
 * does no I/O. This is what lets the same agent run built-in, sandboxed, in
 * a replay backtest, or in a test with plain objects.
 */

/** The SDK API version this host speaks. Agents declare the one they target. */
export const SDK_API_VERSION = 1

/** A verdict that removes the post from the feed, whatever other agents say. */
export const DROP = 'drop' as const

/**
 * One agent's answer for one post: a finite number (higher ranks higher),
 * DROP, or null for "no opinion" (counts as zero).
 */
export type Score = ScoreValue

/**
 * What an agent can ask the host for. `candidates` means the agent must see
 * the whole candidate list in one call (it scores posts relative to each other).
 */
export type Need = 'text' | 'langs' | 'tags' | 'embed' | 'reply' | 'labels' | 'author' | 'engagement' | 'time' | 'candidates' | 'subscriber'

/** Needs that change after a post is first seen, or depend on the other candidates: such agents are scored at rank time. */
export const DYNAMIC_NEEDS: readonly Need[] = ['engagement', 'time', 'candidates', 'subscriber']

/** The reader a list is ranked for, for personal agents (need `subscriber`). */
export interface SubscriberContext {
  did: string
  /** accounts the reader follows */
  follows: ReadonlySet<string>
  /** accounts that follow the reader (as far as this server has seen) */
  followers: ReadonlySet<string>
  /**
   * posts (by postKey) liked or reposted within the feed window by accounts
   * the reader follows, with how many of those accounts did; read lazily
   */
  readonly friendEngagement?: ReadonlyMap<number, number>
  /**
   * posts (by postKey) liked within the feed window by readers whose likes
   * overlap the reader's, each summing its likers' overlap weights; posts the
   * reader liked are left out; read lazily
   */
  readonly coLikes?: ReadonlyMap<number, number>
}

export { postKey }

const postKeys = new WeakMap<AgentPost, number>()

/**
 * postKey of a post, remembered with the post object: the host keeps the
 * objects of a feed's candidates from one build to the next, so a personal
 * list hashes only the posts that are new to it.
 */
export function postKeyOf(p: AgentPost): number {
  let k = postKeys.get(p)
  if (k === undefined) postKeys.set(p, (k = postKey(p.uri)))
  return k
}

/** A post as agents see it. */
export interface AgentPost {
  uri: string
  author: string
  /** ms since epoch */
  createdAt: number
  text: string
  langs: string[]
  tags: string[]
  labels: string[]
  embed: EmbedKind | null
  quote: string | null
  replyRoot: string | null
  replyParent: string | null
  likeCount: number
  repostCount: number
}

/**
 * The time and engagement of a list of posts as typed columns (entry i is
 * the i-th post), for agents that read nothing else (see
 * AgentDefinition.scoreColumns).
 */
export interface PostColumns {
  readonly length: number
  /** ms since epoch */
  readonly createdAt: Float64Array
  readonly likeCount: Float64Array
  readonly repostCount: Float64Array
}

export interface AgentContext<O> {
  /** options, already validated against the agent's schema */
  options: O
  /** the host's clock, ms since epoch */
  now: number
  /** the reader, for agents that need `subscriber`; absent for anonymous readers */
  subscriber?: SubscriberContext
}

/** How an agent runs: shipped, an npm package the admin installed, uploaded code in a sandbox, or an HTTP endpoint. */
export type AgentKind = 'builtin' | 'installed' | 'sandboxed' | 'remote'

/**
 * Cheap conditions the host checks itself before calling an agent: posts
 * that fail them get no opinion from this agent and are never sent to it.
 */
export interface AgentPrefilter {
  /** only posts declared in one of these languages (primary subtags) */
  langs?: string[]
  /** only posts with one of these kinds of media */
  media?: ('images' | 'video' | 'link' | 'none')[]
  /** replies: leave out, or only replies */
  replies?: 'exclude' | 'only'
  /** only posts with at least one hashtag */
  hasTags?: boolean
}

// biome-ignore lint/suspicious/noExplicitAny: an agent's options are its own shape; hosts hold agents of every option type side by side
export interface AgentDefinition<O = any> {
  /** stable id, lower-case letters, digits and dashes */
  id: string
  version: string
  title: string
  description: string
  /** who wrote it (a handle, DID or name), shown in the catalog */
  author?: string
  /** SDK API version the agent targets */
  api: number
  /** schema the host validates options with; its defaults apply */
  options: z.ZodType<O>
  prefilter?: AgentPrefilter
  needs: Need[]
  /** true when, with these options, answers change after a post is first seen (so it is scored at rank time) */
  dynamicWith?(options: O): boolean
  /** labelers (DIDs) whose labels the host should add to posts' `labels`, for these options */
  labelersWith?(options: O): string[]
  scoreBatch(posts: AgentPost[], ctx: AgentContext<O>): Score[]
  /**
   * Optional, for agents that need only 'time' and 'engagement' and have no
   * prefilter: the same scores as scoreBatch, from typed columns instead of
   * post objects, which the host can hand over while ranking without
   * touching every post. Returns one entry per post: a finite number, NaN for
   * no opinion, or -Infinity for DROP. Must agree with scoreBatch (the host
   * uses either).
   */
  scoreColumns?(cols: PostColumns, ctx: AgentContext<O>): Float64Array
}

/**
 * An agent that answers asynchronously (a remote HTTP agent). Score workers
 * await it when a post is first seen; at rank time only stored answers count.
 */
// biome-ignore lint/suspicious/noExplicitAny: an agent's options are its own shape; hosts hold agents of every option type side by side
export interface AsyncAgentDefinition<O = any> extends Omit<AgentDefinition<O>, 'scoreBatch'> {
  scoreBatchAsync(posts: AgentPost[], ctx: AgentContext<O> & { signal: AbortSignal }): Promise<Score[]>
}

/** Declares an agent; a typed identity function so authors get checking. */
export function defineAgent<O>(def: AgentDefinition<O>): AgentDefinition<O> {
  return def
}

/** In a column of scores (scoreColumns): DROP. */
export const DROP_CODE = -Infinity

/** Needs an agent may have and still be scored from PostColumns. */
const COLUMN_NEEDS: readonly Need[] = ['time', 'engagement']

/** True when the host may call the agent's scoreColumns instead of scoreBatch. */
export const scoresColumns = (def: AgentDefinition | AsyncAgentDefinition): def is AgentDefinition & Required<Pick<AgentDefinition, 'scoreColumns'>> =>
  typeof def.scoreColumns === 'function' &&
  !('scoreBatchAsync' in def) &&
  !def.prefilter &&
  !def.labelersWith &&
  def.needs.every((n) => COLUMN_NEEDS.includes(n))

/** True when an agent's output depends on time or engagement, so it cannot be cached per post. */
export const isDynamic = (def: AgentDefinition): boolean => def.needs.some((n) => DYNAMIC_NEEDS.includes(n))

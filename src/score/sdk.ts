import type { z } from 'zod'
import type { EmbedKind } from '../ingest/events.ts'

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
export type Score = number | typeof DROP | null

/**
 * What an agent can ask the host for. `candidates` means the agent must see
 * the whole candidate list in one call (it scores posts relative to each other).
 */
export type Need = 'text' | 'langs' | 'tags' | 'embed' | 'reply' | 'labels' | 'author' | 'engagement' | 'time' | 'candidates'

/** Needs that change after a post is first seen, or depend on the other candidates: such agents are scored at rank time. */
export const DYNAMIC_NEEDS: readonly Need[] = ['engagement', 'time', 'candidates']

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

export interface AgentContext<O> {
  /** options, already validated against the agent's schema */
  options: O
  /** the host's clock, ms since epoch */
  now: number
}

export interface AgentDefinition<O = any> {
  /** stable id, lower-case letters, digits and dashes */
  id: string
  version: string
  title: string
  description: string
  /** SDK API version the agent targets */
  api: number
  /** schema the host validates options with; its defaults apply */
  options: z.ZodType<O>
  needs: Need[]
  scoreBatch(posts: AgentPost[], ctx: AgentContext<O>): Score[]
}

/** Declares an agent; a typed identity function so authors get checking. */
export function defineAgent<O>(def: AgentDefinition<O>): AgentDefinition<O> {
  return def
}

/** True when an agent's output depends on time or engagement, so it cannot be cached per post. */
export const isDynamic = (def: AgentDefinition): boolean => def.needs.some((n) => DYNAMIC_NEEDS.includes(n))

/**
 * The benchmark's reader population: extra static agent instances (so each
 * post is scored by several agents at ingest), distinct subscriber mixes
 * built from them (some with a personal agent), and the mixes used to time
 * one snapshot build.
 */
import { randomBytes } from 'node:crypto'
import type { Feed } from '../src/feeds.ts'
import { resolveMix, type MixEntry, type ResolvedMix } from '../src/rank/mix.ts'
import type { AgentHost, AgentInstance } from '../src/score/host.ts'

/** Static (text/language) instances beyond the example feeds' defaults. */
export const KEYWORDS: Record<string, unknown>[] = [
  { include: ['cats', 'cat', 'kittens', 'dogs', 'dog', 'puppy'] },
  { include: ['music', 'album', 'concert', 'vinyl', 'guitar'], exclude: ['politics'] },
  { include: ['coding', 'typescript', 'rust', 'code review', 'outage'], exclude: ['giveaway', 'airdrop'] },
]
export const LANGUAGES: Record<string, unknown>[] = [{ langs: ['en'] }, { langs: ['ja'] }, { langs: ['de', 'fr', 'es', 'pt'], keepUndeclared: true }]

export function extraInstances(host: AgentHost): AgentInstance[] {
  return [...KEYWORDS.map((o) => host.instance('keyword', o)), ...LANGUAGES.map((o) => host.instance('language', o))]
}

/** A small deterministic PRNG (mulberry32), so every run saves the same mixes. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface BenchMix {
  feed: Feed
  mix: ResolvedMix
}

/** Share of subscriber mixes with a personal agent (`follows`): ranked for each reader on their own. */
export const PERSONAL_SHARE = 0.15

/** `count` distinct mixes of 3–6 agents, alternating between the feeds; PERSONAL_SHARE of them personal. */
export function subscriberMixes(host: AgentHost, feeds: Feed[], count: number, seed = 7): BenchMix[] {
  const rnd = prng(seed)
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]
  const out: BenchMix[] = []
  const seen = new Set<string>()
  for (let attempt = 0; out.length < count && attempt < count * 50; attempt++) {
    const feed = feeds[out.length % feeds.length]
    const agents: MixEntry[] = [
      { agent: 'recency', weight: 20 + Math.floor(rnd() * 80), options: { halfLifeHours: pick([1, 3, 6, 12, 24]) } },
      { agent: 'engagement', weight: Math.floor(rnd() * 60), ...(rnd() < 0.3 ? { options: { repostWeight: 2 } } : {}) },
      { agent: 'keyword', weight: pick([-40, 10, 30, 60]), options: pick(KEYWORDS) },
    ]
    if (rnd() < 0.6) agents.push({ agent: 'language', weight: 0, options: pick(LANGUAGES) })
    if (rnd() < 0.3) agents.push({ agent: 'keyword', weight: pick([-60, 20, 50]), options: pick(KEYWORDS) })
    if (rnd() < PERSONAL_SHARE) agents.push({ agent: 'follows', weight: pick([20, 40]), options: { mode: 'followed' } })
    const mix = resolveMix(host, agents, feed.base)
    const key = `${feed.uri} ${mix.fingerprint}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ feed, mix })
  }
  return out
}

/** The mixes timed for refresh_ms: 4 own agents (+ the feed's base filter, if any). */
export function refreshMix(host: AgentHost, feed: Feed): ResolvedMix {
  return resolveMix(
    host,
    [
      { agent: 'language', weight: 0, options: { langs: ['en'] } },
      { agent: 'recency', weight: 50, options: { halfLifeHours: 6 } },
      { agent: 'engagement', weight: 30 },
      { agent: 'keyword', weight: 20, options: KEYWORDS[0] },
    ],
    feed.base,
  )
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** A random, well-formed did:plc. */
export function randomPlcDid(): string {
  const b = randomBytes(24)
  let s = ''
  for (let i = 0; i < 24; i++) s += B32[b[i] & 31]
  return `did:plc:${s}`
}

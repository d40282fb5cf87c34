import type { PostEvent } from '../../src/contracts/events.ts'
import type { AgentPost } from '../../src/score/sdk.ts'

let n = 0

/** A realistic post with defaults; override what the test is about. */
export function post(p: Partial<AgentPost> = {}): AgentPost {
  n++
  const author = p.author ?? `did:plc:author${String(n % 7).padStart(18, 'x')}`
  return {
    uri: p.uri ?? `at://${author}/app.bsky.feed.post/3kabc${String(n).padStart(8, '2')}`,
    author,
    createdAt: p.createdAt ?? Date.parse('2026-11-22T10:00:00Z'),
    text: p.text ?? 'Just watched the sunset from the pier, the sky was unreal tonight',
    langs: p.langs ?? ['en'],
    tags: p.tags ?? [],
    labels: p.labels ?? [],
    embed: p.embed ?? null,
    quote: p.quote ?? null,
    replyRoot: p.replyRoot ?? null,
    replyParent: p.replyParent ?? null,
    likeCount: p.likeCount ?? 0,
    repostCount: p.repostCount ?? 0,
  }
}

export const HOUR = 3_600_000

let seq = 0

/**
 * A normalized post event as the writer receives it. `minutesAgo` sets
 * createdAt; `rkey` defaults to a fresh, unique one.
 */
export function postEvent(p: Partial<PostEvent> & { minutesAgo?: number; rkey?: string } = {}): PostEvent {
  const { minutesAgo, rkey, ...rest } = p
  const author = rest.author ?? 'did:plc:testauthortestauthortesta'
  return {
    t: 'post',
    uri: `at://${author}/app.bsky.feed.post/${rkey ?? `3kt${String(++seq).padStart(10, 'a')}`}`,
    cid: 'bafyreiaaaaaaaaaaaaaaaaaaaa',
    author,
    createdAt: Date.now() - (minutesAgo ?? 0) * 60_000,
    text: 'a post',
    langs: ['en'],
    replyRoot: null,
    replyParent: null,
    embed: null,
    quote: null,
    tags: [],
    labels: [],
    ...rest,
  }
}

const S32 = '234567abcdefghijklmnopqrstuvwxyz'

/** A TID record key minted at `ms` (64 bits: 53 of microseconds, 10 of clock id; base32-sortable). */
export function tid(ms: number, clock = 0): string {
  let v = (BigInt(Math.round(ms * 1000)) << 10n) | BigInt(clock & 1023)
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = S32[Number(v & 31n)] + out
    v >>= 5n
  }
  return out
}

import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor } from './cursor.ts'
import { decodeFeedContext, encodeFeedContext, MAX_FEED_CONTEXT } from './feed-context.ts'

describe('page cursor', () => {
  it('round-trips snapshot and rank', () => {
    for (const c of [{ snapshot: 1, rank: 0 }, { snapshot: 987654321, rank: 50 }, { snapshot: 2 ** 40, rank: 99999 }]) {
      expect(decodeCursor(encodeCursor(c))).toEqual(c)
    }
  })

  it('rejects anything that is not one of ours', () => {
    for (const bad of ['', 'abc', '1.', '.1', '0.5', '1.2.3', '1:2', '-1.2', 'zzzzzzzzzzzz.1', '1.1 ', 'ÿ.1']) {
      expect(decodeCursor(bad)).toBeNull()
    }
  })
})

describe('feedContext', () => {
  it('encodes the biggest contributions first, rounded, and skips zeros', () => {
    const s = encodeFeedContext({
      fingerprint: 'abc123',
      contributions: [
        { label: 'recency', value: 21.4 },
        { label: 'keyword', value: 62 },
        { label: 'language', value: 0.2 },
        { label: 'calm', value: -5 },
      ],
    })
    expect(s).toBe('v1|abc123|keyword:+62,recency:+21,calm:-5')
    expect(decodeFeedContext(s)).toEqual({
      fingerprint: 'abc123',
      contributions: [
        { label: 'keyword', value: 62 },
        { label: 'recency', value: 21 },
        { label: 'calm', value: -5 },
      ],
    })
  })

  it('stays under the 2000-character limit with many agents', () => {
    const s = encodeFeedContext({ fingerprint: 'f'.repeat(16), contributions: Array.from({ length: 40 }, (_, i) => ({ label: `agent-${'x'.repeat(50)}-${i}`, value: 99 })) })
    expect(s.length).toBeLessThanOrEqual(MAX_FEED_CONTEXT)
    expect(decodeFeedContext(s)?.contributions.length).toBe(8)
  })

  it('rejects tampered or foreign contexts', () => {
    for (const bad of ['', 'v2|ab|x:+1', 'v1|ab|x:1', 'v1|xyz|a:+1', 'v1|ab|<script>:+1', 'v1|ab|a:+1|bad rkey!', 'v1|ab|a:+1|fresh|extra']) {
      expect(decodeFeedContext(bad)).toBeNull()
    }
    expect(decodeFeedContext('v1|ab|')).toEqual({ fingerprint: 'ab', contributions: [] })
  })

  it('carries the feed the item was served in', () => {
    const s = encodeFeedContext({ fingerprint: 'ab', contributions: [{ label: 'recency', value: 3 }], feed: 'science' })
    expect(s).toBe('v1|ab|recency:+3|science')
    expect(decodeFeedContext(s)).toEqual({ fingerprint: 'ab', contributions: [{ label: 'recency', value: 3 }], feed: 'science' })
  })
})

import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor, verifyCursor } from './cursor.ts'
import { decodeFeedContext, encodeFeedContext, MAX_FEED_CONTEXT } from './feed-context.ts'

describe('page cursor', () => {
  const secret = 'a-secret-of-at-least-32-characters!!'
  const bound = { feed: 'at://did:web:x/app.bsky.feed.generator/a', list: '0123456789abcdef', reader: 'did:plc:alice' }

  it('round-trips snapshot and rank, and verifies for what it was made for', () => {
    for (const c of [
      { snapshot: 1, rank: 0 },
      { snapshot: 987654321, rank: 50 },
      { snapshot: 2 ** 40, rank: 99999 },
    ]) {
      const d = decodeCursor(encodeCursor(secret, c, bound))!
      expect({ snapshot: d.snapshot, rank: d.rank }).toEqual(c)
      expect(verifyCursor(secret, d, bound)).toBe(true)
    }
  })

  it('refuses a cursor for another reader, feed, list, position or secret, and a made-up one', () => {
    const c = decodeCursor(encodeCursor(secret, { snapshot: 7, rank: 30 }, bound))!
    expect(verifyCursor(secret, c, { ...bound, reader: 'did:plc:bob' })).toBe(false)
    expect(verifyCursor(secret, c, { ...bound, reader: null })).toBe(false)
    expect(verifyCursor(secret, c, { ...bound, feed: 'at://did:web:x/app.bsky.feed.generator/b' })).toBe(false)
    expect(verifyCursor(secret, c, { ...bound, list: 'fedcba9876543210' })).toBe(false)
    expect(verifyCursor(secret, { ...c, snapshot: 8 }, bound)).toBe(false)
    expect(verifyCursor(secret, { ...c, rank: 60 }, bound)).toBe(false)
    expect(verifyCursor('another-secret-of-at-least-32-chars', c, bound)).toBe(false)
    expect(verifyCursor(secret, decodeCursor(`7.u.${'A'.repeat(22)}`)!, bound)).toBe(false)
  })

  it('rejects anything that is not one of ours', () => {
    for (const bad of [
      '',
      'abc',
      '1.',
      '.1',
      '0.5',
      '1.2',
      '1.2.3',
      '1:2',
      '-1.2',
      'zzzzzzzzzzzz.1',
      '1.1 ',
      'ÿ.1',
      `0.5.${'A'.repeat(22)}`,
      `1.5.${'A'.repeat(21)}`,
    ]) {
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
    const s = encodeFeedContext({
      fingerprint: 'f'.repeat(16),
      contributions: Array.from({ length: 40 }, (_, i) => ({ label: `agent-${'x'.repeat(50)}-${i}`, value: 99 })),
    })
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

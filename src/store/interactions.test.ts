import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { tempDir } from '../../test/support/resources.ts'
import { openDb, type Db } from './db.ts'
import { InteractionStore } from './interactions.ts'

const reader = 'did:plc:readerreaderreaderreader'
const FEED = 'at://did:web:feeds.test/app.bsky.feed.generator/fresh'
const OTHER_FEED = 'at://did:web:feeds.test/app.bsky.feed.generator/science'
const uri = (i: number) => `at://did:plc:author/app.bsky.feed.post/${i}`

describe('InteractionStore bounds', () => {
  let db: Db
  let cleanup: () => void
  beforeEach(() => {
    const t = tempDir()
    cleanup = t.cleanup
    db = openDb(path.join(t.dir, 'skysift.db'))
  })
  afterEach(() => {
    db.close()
    cleanup()
  })

  const rows = () =>
    db.sqlite.prepare('SELECT post_uri, event FROM interactions WHERE subscriber = ? AND feed = ? ORDER BY id').all(reader, FEED) as {
      post_uri: string
      event: string
    }[]

  it('keeps at most maxPerFeed interactions per reader and feed, the newest, and counts them', () => {
    const store = new InteractionStore(db.sqlite, { maxPerFeed: 50 })
    for (let b = 0; b < 12; b++) {
      const batch = Array.from({ length: 10 }, (_, j) => ({
        feed: FEED,
        postUri: uri(b * 10 + j),
        event: (j % 3 === 0 ? 'more' : 'seen') as 'more' | 'seen',
        feedContext: null,
        reqId: null,
      }))
      expect(store.add(reader, batch)).toBe(10)
      expect(store.count(reader, FEED)).toBe(Math.min(50, (b + 1) * 10))
    }
    const kept = rows()
    expect(kept).toHaveLength(50)
    expect(kept.map((r) => r.post_uri)).toEqual(Array.from({ length: 50 }, (_, i) => uri(70 + i)))
    // another feed of the same reader has its own cap
    store.add(reader, [{ feed: OTHER_FEED, postUri: uri(1), event: 'less', feedContext: null, reqId: null }])
    expect(store.count(reader, OTHER_FEED)).toBe(1)
    expect(store.count(reader, FEED)).toBe(50)
    // what the page reads is bounded by the cap too
    expect(store.active(reader, FEED)).toHaveLength(50)
  })

  it('records "seen" once per item, and changes the signature on every new interaction, undo and removal', () => {
    const store = new InteractionStore(db.sqlite, { maxPerFeed: 50 })
    const s0 = store.signature(reader, FEED)
    expect(store.add(reader, [{ feed: FEED, postUri: uri(1), event: 'seen', feedContext: null, reqId: null }])).toBe(1)
    const s1 = store.signature(reader, FEED)
    expect(s1).not.toBe(s0)
    // the AppView reports every view: repeats (in one batch or later) are not stored and change nothing
    expect(
      store.add(
        reader,
        [1, 1, 1].map(() => ({ feed: FEED, postUri: uri(1), event: 'seen' as const, feedContext: null, reqId: null })),
      ),
    ).toBe(0)
    expect(store.signature(reader, FEED)).toBe(s1)
    expect(rows()).toHaveLength(1)
    store.add(reader, [{ feed: FEED, postUri: uri(1), event: 'more', feedContext: null, reqId: null }])
    const s2 = store.signature(reader, FEED)
    expect(s2).not.toBe(s1)
    const id = store.recent(reader, FEED)[0].id
    expect(store.undo(reader, id)?.undone).toBe(true)
    const s3 = store.signature(reader, FEED)
    expect(s3).not.toBe(s2)
    // retention removing old rows counts as a change too
    expect(store.prune(Date.now() + 365 * 86_400_000)).toBe(2)
    expect(store.signature(reader, FEED)).not.toBe(s3)
    expect(store.count(reader, FEED)).toBe(0)
  })
})

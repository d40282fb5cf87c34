import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppContext } from '../src/context.ts'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import type { FeedService } from '../src/feed/service.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { storeFeedService } from './support/feed-service.ts'
import { postEvent } from './support/builders.ts'

const did = (name: string) => `did:plc:${name.padEnd(24, 'x')}`
const [ann, ben, cat, dan] = ['ann', 'ben', 'cat', 'dan'].map(did)
let n = 0
const post = (author: string, minutesAgo: number): PostEvent => postEvent({ author, minutesAgo, text: 'hello' })
const follow = (a: string, s: string): IngestEvent => ({ t: 'follow', uri: `at://${a}/app.bsky.graph.follow/${++n}`, author: a, subject: s })

describe('personal agents: one list per reader', () => {
  let ctx: AppContext
  let feeds: FeedService
  const posts = { byCat: post(cat, 30), byDan: post(dan, 20), byBen: post(ben, 10) }

  let close: () => Promise<void>
  beforeAll(() => {
    ;({ ctx, feeds, close } = storeFeedService())
  })
  afterAll(() => close())

  it('ranks followed authors first for each reader, using the follow graph seen on the firehose', async () => {
    const feed = ctx.feeds[0]
    const mix = [
      { agent: 'follows', weight: 100 },
      { agent: 'recency', weight: 10 },
    ]
    await feeds.putMix(feed, ann, mix)
    await feeds.putMix(feed, ben, mix)
    // the writer keeps follows made by subscribers (ann, ben), not by others
    new BatchWriter(ctx.db.sqlite).write({
      id: 'a',
      events: [...Object.values(posts), follow(ann, cat), follow(ben, dan), follow(cat, dan)],
      scores: [],
      eventTime: Date.now(),
    })
    const order = (who: string | null) => feeds.skeleton(feed, who, 10).feed.map((i) => i.post)
    expect(order(ann)).toEqual([posts.byCat.uri, posts.byBen.uri, posts.byDan.uri])
    expect(order(ben)).toEqual([posts.byBen.uri, posts.byDan.uri, posts.byCat.uri]) // ben's own post counts as followed
    // same mix, different readers: different lists; anonymous readers get the default mix
    expect(order(null)).toEqual([posts.byBen.uri, posts.byDan.uri, posts.byCat.uri])
    const rows = ctx.db.sqlite.prepare('SELECT DISTINCT fingerprint FROM feed_snapshots').pluck().all() as string[]
    expect(rows.filter((f) => f.includes('.'))).toHaveLength(2)
  })
})

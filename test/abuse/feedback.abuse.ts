/**
 * One reader's stored feedback, the way finding 3 of the abuse review froze
 * the server: 76,000 interactions from one reader (1,000 a request), then
 * that reader paging and sending one more batch, against a real serving
 * process.
 *
 * Bounds (SKYSIFT_FEEDBACK_PER_FEED = 2000 by default):
 *  - the reader's stored history for the feed never exceeds the cap (oldest out);
 *  - an anonymous reader's p50 while the 76 batches arrive back to back is within 10× and p99 within 12× of the
 *    same reader's alone (the review measured ~700×);
 *  - the flooding reader's own first page stays within 5× (p50) of what it cost before the flood, and one more
 *    batch from them costs within 5× (p50) of the same batch from a reader with no history;
 *  - no thread or open file stays behind.
 */
import Database from 'better-sqlite3'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import type { TestUser } from '../support/identity.ts'
import { FRESH, measure, quantile, report, startServer, type Server } from './support/serving.ts'

const FLOOD = 76_000
const BATCH = 1000
const CAP = 2000

describe('abuse: one reader floods sendInteractions', () => {
  let sv: Server
  let context: string
  beforeAll(async () => {
    sv = await startServer({ posts: 3000, users: ['flooder', 'newcomer'] })
  })

  const anon = async () => {
    const r = await sv.call('GET', 'app.bsky.feed.getFeedSkeleton', null, { feed: FRESH, limit: '30' })
    expect(r.status).toBe(200)
    return r.ms
  }
  const firstPage = async (who: TestUser) => {
    const r = await sv.call('GET', 'app.bsky.feed.getFeedSkeleton', who, { feed: FRESH, limit: '30' })
    expect(r.status).toBe(200)
    return r.ms
  }
  let item = 0
  const batch = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      item: `at://did:plc:floodedauthor00000000000/app.bsky.feed.post/3kf${String(++item).padStart(10, '0')}`,
      event: i % 50 === 0 ? 'app.bsky.feed.defs#requestLess' : 'app.bsky.feed.defs#interactionSeen',
      feedContext: context,
    }))
  const send = async (who: TestUser, n: number) => {
    const r = await sv.call('POST', 'app.bsky.feed.sendInteractions', who, { interactions: batch(n) })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    return r.ms
  }
  const stored = (who: TestUser) => {
    const db = new Database(sv.dbPath, { readonly: true })
    try {
      return db.prepare('SELECT count(*) FROM interactions WHERE subscriber = ?').pluck().get(who.did) as number
    } finally {
      db.close()
    }
  }

  it(`${FLOOD} interactions from one reader are capped and cost others nothing noticeable`, async () => {
    const { flooder, newcomer } = sv.users
    context = (await sv.call('GET', 'app.bsky.feed.getFeedSkeleton', null, { feed: FRESH, limit: '1' })).body.feed[0].feedContext
    await measure(anon, 500)
    await measure(() => firstPage(flooder), 500, 20)
    await send(newcomer, 10)
    await sleep(5000)
    const before = sv.stats()
    const alone = await measure(anon, 2000)
    const flooderBefore = await measure(() => firstPage(flooder), 1000, 30)
    const newcomerSend = await measure(() => send(newcomer, BATCH), 1500, 10)

    // the flood, with an anonymous reader served all the while
    let done = false
    const flood = (async () => {
      for (let i = 0; i < FLOOD / BATCH; i++) await send(flooder, BATCH)
    })().finally(() => (done = true))
    const samples: number[] = []
    while (!done) samples.push(await anon())
    await flood
    samples.sort((a, b) => a - b)
    const underFlood = { n: samples.length, p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) }
    const rows = stored(flooder)

    const flooderAfter = await measure(() => firstPage(flooder), 1000, 30)
    const oneMore = await measure(() => send(flooder, BATCH), 1500, 10)
    await sleep(5000)
    const settled = sv.stats()
    report('feedback', { before, settled, rows, alone, underFlood, flooderBefore, flooderAfter, newcomerSend, oneMore })

    expect(rows).toBeLessThanOrEqual(CAP)
    expect(stored(flooder)).toBeLessThanOrEqual(CAP)
    expect(underFlood.p50).toBeLessThan(10 * alone.p50)
    expect(underFlood.p99).toBeLessThan(12 * alone.p99)
    expect(flooderAfter.p50).toBeLessThan(5 * flooderBefore.p50)
    expect(oneMore.p50).toBeLessThan(5 * newcomerSend.p50)
    expect(settled.threads).toBeLessThanOrEqual(before.threads)
    expect(settled.fds).toBeLessThanOrEqual(before.fds + 2)
  })
})

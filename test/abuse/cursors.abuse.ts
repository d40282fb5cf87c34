/**
 * Paging cursors and explanations across readers, the way finding 5 of the
 * abuse review walked every snapshot (private mixes' lists included) with
 * hand-made cursors and read a reader's private keywords through
 * explainItem, against a real serving process.
 *
 * Bounds (SKYSIFT_CURSOR_SECRET, else one kept in SQLite):
 *  - no made-up cursor, for each of the first 300 snapshot ids, in the old format and with a real cursor's MAC
 *    moved onto another id, shows a post: one naming a snapshot that exists is refused with 400, one naming none
 *    gets the empty page that ends paging (what an expired snapshot gives);
 *  - a reader's cursor is refused to another reader, to an anonymous caller and on another feed;
 *  - an item of a reader's private mix is explained to that reader only (explainItem and /why).
 */
import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { TestUser } from '../support/identity.ts'
import { FRESH, report, SCIENCE, startServer, type Server } from './support/serving.ts'

const SECRET_WORD = 'coffee'

describe('abuse: cursors and explanations across readers', () => {
  let sv: Server
  beforeAll(async () => {
    sv = await startServer({ posts: 1000, users: ['alice', 'bob'] })
  })

  const page = (who: TestUser | null, feed: string, cursor?: string) =>
    sv.call('GET', 'app.bsky.feed.getFeedSkeleton', who, { feed, limit: '10', ...(cursor === undefined ? {} : { cursor }) })

  it('refuses made-up and borrowed cursors, and explains a private mix to its reader only', async () => {
    const { alice, bob } = sv.users
    const put = await sv.call('POST', 'app.skysift.feed.putMix', alice, {
      feed: FRESH,
      agents: [{ agent: 'keyword', weight: 100, options: { include: [SECRET_WORD], requireMatch: true } }],
    })
    expect(put.status).toBe(200)
    const first = await page(alice, FRESH)
    expect(first.status).toBe(200)
    const cursor = first.body.cursor as string
    expect((await page(alice, FRESH, cursor)).status).toBe(200)
    // other readers' lists exist too
    await page(null, FRESH)
    await page(bob, SCIENCE)

    const [snap, , mac] = cursor.split('.')
    let opened = 0
    let refused = 0
    let empty = 0
    for (let id = 1; id <= 300; id++) {
      const s = id.toString(36)
      for (const forged of [`${s}.0`, `${s}.0.${randomBytes(16).toString('base64url').slice(0, 22)}`, `${s}.a.${mac}`]) {
        if (forged === cursor) continue
        const r = await page(null, FRESH, forged)
        if (r.status === 200 && r.body.feed.length) opened++
        if (r.status === 400) refused++
        else if (r.status === 200 && !r.body.feed.length) empty++
      }
    }
    const borrowed = await Promise.all([
      page(bob, FRESH, cursor),
      page(null, FRESH, cursor),
      page(alice, SCIENCE, cursor),
      page(null, FRESH, `${snap}.a.${mac}`),
    ])

    const mine = first.body.feed[0].feedContext as string
    const explainAs = (who: TestUser | null) => sv.call('GET', 'app.skysift.feed.explainItem', who, { feedContext: mine })
    const [own, anon, other] = await Promise.all([explainAs(alice), explainAs(null), explainAs(bob)])
    const why = await (await fetch(`${sv.url}/why?ctx=${encodeURIComponent(mine)}`)).text()
    report('cursors', {
      forged: opened + refused + empty,
      opened,
      refused,
      empty,
      borrowed: borrowed.map((r) => r.status),
      explain: { own: own.status, anon: anon.status, other: other.status },
    })

    expect(opened).toBe(0)
    expect(opened + refused + empty).toBe(3 * 300 - 1)
    expect(refused).toBeGreaterThan(0)
    for (const r of borrowed) {
      expect(r.status).toBe(400)
      expect(r.body.error).toBe('InvalidRequest')
    }
    expect(own.status).toBe(200)
    expect(JSON.stringify(own.body)).toContain(SECRET_WORD)
    for (const r of [anon, other]) {
      expect(r.status).toBe(400)
      expect(r.body.error).toBe('UnknownContext')
      expect(JSON.stringify(r.body)).not.toContain(SECRET_WORD)
    }
    expect(why).not.toContain(SECRET_WORD)
  })
})

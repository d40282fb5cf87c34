/**
 * The social agents and every feedback signal on a real local network: users
 * like posts on their PDS, Skysift keeps the like graph from the firehose,
 * and a reader's feed through the AppView is ranked by `like-minded`; the
 * reader's app-style interactions reach Skysift through the PDS proxy.
 *
 * Run: npx vitest run test/e2e/social.e2e.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LikeGraph } from '../../src/store/like-graph.ts'
import { until } from '../support/resources.ts'
import { type LocalNetwork, type LocalUser, startLocalNetwork } from './support/network.ts'
import { type LocalSkysift, startLocalSkysift } from './support/skysift.ts'

const STEP_TIMEOUT = 120_000

describe('social agents and feedback end to end', () => {
  let net: LocalNetwork
  let sky: LocalSkysift
  let owner: LocalUser, reader: LocalUser, twin: LocalUser, stranger: LocalUser, carol: LocalUser
  const post: Record<string, string> = {}

  beforeAll(async () => {
    net = await startLocalNetwork()
    ;[owner, reader, twin, stranger, carol] = await Promise.all(['feedpub', 'rhea', 'tara', 'stan', 'carol'].map((h) => net.createUser(h)))
    sky = await startLocalSkysift(net, owner)
  }, STEP_TIMEOUT)

  afterAll(async () => {
    await sky?.stop()
    await net?.close()
  }, STEP_TIMEOUT)

  const stored = (sql: string, ...args: unknown[]) =>
    Number(
      sky.ctx.db.sqlite
        .prepare(sql)
        .pluck()
        .get(...args),
    )

  it(
    'keeps who liked what from the firehose',
    async () => {
      const cid: Record<string, string> = {}
      for (const k of ['niche1', 'niche2', 'twinsPick', 'strangersPick']) {
        const r = await carol.agent.post({ text: `a post: ${k}` })
        post[k] = r.uri
        cid[k] = r.cid
      }
      await until("carol's posts stored", () => stored('SELECT count(*) FROM posts WHERE author = ?', carol.did) === 4)
      const like = (who: LocalUser, k: string) => who.agent.like(post[k], cid[k])
      // the reader and the twin share two niche posts; the twin and the stranger each like one more post, once
      for (const [who, k] of [
        [reader, 'niche1'],
        [reader, 'niche2'],
        [twin, 'niche1'],
        [twin, 'niche2'],
        [twin, 'twinsPick'],
        [stranger, 'strangersPick'],
      ] as const)
        await like(who, k)
      const graph = new LikeGraph(sky.ctx.db.sqlite)
      await until('the six likes in the like graph', () => graph.size() === 6)
      await net.processAll()
    },
    STEP_TIMEOUT,
  )

  it(
    "with like-minded, a post liked by someone who shares the reader's likes ranks above an equally liked post whose liker shares nothing",
    async () => {
      const put = await sky.viaPds(reader, 'app.skysift.feed.putMix', {
        input: {
          feed: sky.feeds.fresh,
          agents: [
            { agent: 'like-minded', weight: 100 },
            { agent: 'recency', weight: 1 },
          ],
        },
      })
      expect(put.status, JSON.stringify(put.body)).toBe(200)
      const order = await until("the reader's personal list", async () => {
        const res = await net.appviewAgentFor(reader).app.bsky.feed.getFeed({ feed: sky.feeds.fresh, limit: 50 })
        const uris = res.data.feed.map((i) => i.post.uri)
        return uris.includes(post.twinsPick) && uris.includes(post.strangersPick) ? uris : false
      })
      expect(order.indexOf(post.twinsPick)).toBeLessThan(order.indexOf(post.strangersPick))
      expect(order[0]).toBe(post.twinsPick)
    },
    STEP_TIMEOUT,
  )

  it(
    "accepts the app's interactionLike and clickthroughAuthor through the PDS proxy and lists them",
    async () => {
      const page = await sky.viaPds(reader, 'app.bsky.feed.getFeedSkeleton', { query: { feed: sky.feeds.fresh, limit: '10' } })
      expect(page.status).toBe(200)
      const [first, second] = page.body.feed as { post: string; feedContext: string }[]
      const sent = await sky.viaPds(reader, 'app.bsky.feed.sendInteractions', {
        input: {
          feed: sky.feeds.fresh,
          interactions: [
            { item: first.post, event: 'app.bsky.feed.defs#interactionLike', feedContext: first.feedContext, reqId: page.body.reqId },
            { item: second.post, event: 'app.bsky.feed.defs#clickthroughAuthor', feedContext: second.feedContext, reqId: page.body.reqId },
          ],
        },
      })
      expect(sent.status, JSON.stringify(sent.body)).toBe(200)
      const listed = await sky.viaPds(reader, 'app.skysift.feed.listFeedback', { query: { feed: sky.feeds.fresh } })
      expect(listed.status).toBe(200)
      expect(listed.body.feedback.map((f: { event: string; post: string }) => [f.event, f.post])).toEqual([
        ['author', second.post],
        ['like', first.post],
      ])
    },
    STEP_TIMEOUT,
  )
})

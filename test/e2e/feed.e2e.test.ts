/**
 * The whole chain on real parts: a local atproto network (PLC + PDS +
 * AppView from @atproto/dev-env) and an in-process Skysift (serve, store,
 * refresh, score and ingest stages on SQLite + BullMQ/Redis) reading the
 * PDS firehose.
 *
 *   carol posts ──PDS firehose──▶ ingest ─▶ score ─▶ store ─▶ SQLite
 *   alice/bob ──PDS (atproto-proxy)──▶ putMix / getMix
 *   alice/bob ──PDS──▶ AppView getFeed ──▶ our getFeedSkeleton (user's JWT) ─▶ hydrated posts
 *
 * Run: npx vitest run test/e2e/feed.e2e.test.ts
 * Set SKYSIFT_E2E_LOG=debug (or info/warn) to see Skysift's logs.
 */
import type { Server } from 'node:http'

import { type AtpAgent, lexicons } from '@atproto/api'
import { Secp256k1Keypair } from '@atproto/crypto'
import { createServiceJwt } from '@atproto/xrpc-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { AppContext } from '../../src/context.ts'
import { loadSkysiftLexicons } from '../../src/serve/lexicons.ts'
import { decodeFeedContext } from '../../src/rank/feed-context.ts'
import { type LocalNetwork, type LocalUser, decodeJwtPayload, startLocalNetwork } from './support/network.ts'
import { type LocalSkysift, startLocalSkysift } from './support/skysift.ts'
import { type Wiretap, tapResponses } from './support/wiretap.ts'
import { until } from '../support/resources.ts'

const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const GET_MIX = 'app.skysift.feed.getMix'
const PUT_MIX = 'app.skysift.feed.putMix'
const MIN = 60_000
const HOUR = 60 * MIN
const STEP_TIMEOUT = 120_000
/** how long an edge node may take to reflect a deletion (docs/scaling.md) */
const EDGE_BOUND_MS = 3000
const ourLexicons = loadSkysiftLexicons()

/**
 * Carol's posts. Ages are relative to the moment she posts (createdAt is set
 * in the record). The "science" feed's base mix is a topic filter (keyword,
 * requireMatch, include science/space/physics/.../nasa/research/telescope/
 * climate, exclude giveaway/airdrop); it looks back 48 h. "fresh" has no
 * filter and looks back 24 h.
 */
const POSTS = {
  nasaEs: { text: 'La NASA lanza hoy un nuevo satélite de observación', langs: ['es'], ageMs: 1 * MIN }, // science (nasa), not English
  giveaway: { text: 'Telescope giveaway! Repost to win one', langs: ['en'], ageMs: 3 * MIN }, // excluded from science (giveaway)
  physics: { text: 'Physics research results out today, preprint below', langs: ['en'], ageMs: 10 * MIN }, // science
  lunch: { text: 'Just had a great lunch with friends by the river', langs: ['en'], ageMs: 30 * MIN }, // not science
  telescope: { text: 'First light from the new telescope: a spiral galaxy in stunning detail', langs: ['en'], ageMs: 1 * HOUR }, // science + telescope
  climate: { text: 'Climate science explainer: why the oceans are warming', langs: ['en'], ageMs: 2 * HOUR }, // science
  oldTelescope: { text: 'Throwback: my first telescope, thirty years ago', langs: ['en'], ageMs: 30 * HOUR }, // science + telescope; outside fresh's 24 h window
} as const
type PostKey = keyof typeof POSTS

/** alice: "telescopes above all, then newest first" */
const ALICE_MIX = [
  { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
  { agent: 'recency', weight: 10 },
]
/** bob: "newest first, but push telescope talk down" */
const BOB_MIX = [
  { agent: 'recency', weight: 100 },
  { agent: 'keyword', weight: -50, options: { include: ['telescope'] } },
]

/*
 * Expected orders, from the mix semantics (rank.ts: each agent's scores are
 * min-max normalized over the candidates, times the weight, summed; any
 * "drop" removes the post; ties go to the newer post). No post is liked, so
 * engagement is 0 everywhere and adds nothing.
 *
 * science candidates after the base filter: nasaEs, physics, telescope, climate, oldTelescope.
 * - default (language en = filter, recency 50, engagement 30): English only,
 *   newest first → physics, telescope, climate, oldTelescope.
 * - alice: keyword(telescope) 100 dominates recency 10 (max 10 points), so the
 *   two telescope posts come first (newer first), then the rest newest first;
 *   no language agent, so the Spanish post is in.
 * - bob: recency 100 (half-life 6 h; normalized over all 7 candidates:
 *   nasaEs≈100, physics≈98, telescope≈89, climate≈79, oldTelescope=0) and
 *   -50 for telescope posts: telescope ≈39 falls below climate ≈79 although it
 *   is newer; oldTelescope ≈-50 stays last.
 * fresh (nobody saved a mix; default recency 70 + engagement 30, 24 h
 * window): every post newest first, except oldTelescope (30 h old).
 */
const EXPECT = {
  scienceDefault: ['physics', 'telescope', 'climate', 'oldTelescope'],
  scienceAlice: ['telescope', 'oldTelescope', 'nasaEs', 'physics', 'climate'],
  scienceBob: ['nasaEs', 'physics', 'climate', 'telescope', 'oldTelescope'],
  freshDefault: ['nasaEs', 'giveaway', 'physics', 'lunch', 'telescope', 'climate'],
} satisfies Record<string, PostKey[]>
/** carol deletes this one; afterwards every list is the same minus it */
const DELETED: PostKey = 'telescope'
const without = (keys: PostKey[], k: PostKey) => keys.filter((x) => x !== k)

interface SkeletonBody {
  feed: { post: string; feedContext?: string }[]
  cursor?: string
  reqId?: string
}

/*
 * Twice: with the AppView (and every PDS) talking to the primary itself, and to an edge node that needs only Redis
 * (the primary publishing for it; the edge passes mixes on to the primary and queues feedback for it).
 */
describe.each([{ via: 'primary' as const }, { via: 'edge' as const }])(
  'skysift end to end through the $via: firehose → agents → per-subscriber feeds through the AppView',
  ({ via }) => {
    let net: LocalNetwork
    let ctx: AppContext
    let sky: LocalSkysift
    /** the node the AppView talks to */
    let serve: LocalSkysift['front']
    let tap: Wiretap
    let serviceDid: string
    let owner: LocalUser, alice: LocalUser, bob: LocalUser, carol: LocalUser
    const feedUri = { fresh: '', science: '' }
    const uri = {} as Record<PostKey, string>
    const keyOf = new Map<string, PostKey>()
    const fingerprint = { alice: '', bob: '' }
    const timings: Record<string, number> = {}
    /** skeleton bodies the test fetched itself (the wiretap sees these and the AppView's) */
    let directSkeletonCalls = 0
    /** getFeed calls made through the AppView (each makes one getFeedSkeleton call to us) */
    let appviewGetFeeds = 0

    const keys = (uris: string[]): string[] => uris.map((u) => keyOf.get(u) ?? u)
    /**
     * A check that holds at once on the primary, and within EDGE_BOUND_MS on an edge node (which learns of changes from
     * what the primary publishes to Redis).
     */
    const eventually = async (what: string, check: () => Promise<void>) => {
      if (via === 'primary') return check()
      const end = Date.now() + EDGE_BOUND_MS
      for (;;) {
        try {
          return await check()
        } catch (err) {
          if (Date.now() > end) throw new Error(`${what}: not within ${EDGE_BOUND_MS} ms on the edge: ${(err as Error).message}`)
          await new Promise((r) => setTimeout(r, 100))
        }
      }
    }
    const skeletonKeys = (b: SkeletonBody) => keys(b.feed.map((i) => i.post))

    /** getFeedSkeleton straight to Skysift's HTTP port */
    async function skeleton(feed: string, authorization?: string): Promise<SkeletonBody> {
      directSkeletonCalls++
      const res = await fetch(`${serve.url}/xrpc/${SKELETON}?feed=${encodeURIComponent(feed)}&limit=50`, {
        headers: authorization ? { authorization } : {},
      })
      const body = (await res.json()) as SkeletonBody
      expect(res.status, JSON.stringify(body)).toBe(200)
      lexicons.assertValidXrpcOutput(SKELETON, body)
      return body
    }

    /** a user's call to one of our methods, proxied by their PDS (`atproto-proxy: <our did>#bsky_fg`) */
    async function viaPds(user: LocalUser, nsid: string, opts: { query?: Record<string, string>; input?: unknown }) {
      const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : ''
      const res = await user.agent.sessionManager.fetchHandler(`/xrpc/${nsid}${qs}`, {
        method: opts.input === undefined ? 'GET' : 'POST',
        headers: {
          'atproto-proxy': `${serviceDid}#bsky_fg`,
          ...(opts.input === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(opts.input === undefined ? {} : { body: JSON.stringify(opts.input) }),
      })
      return { status: res.status, body: (await res.json()) as Record<string, any> }
    }

    /** a user's call to one of our methods, sent directly with a token from com.atproto.server.getServiceAuth */
    async function direct(user: LocalUser, nsid: string, opts: { query?: Record<string, string>; input?: unknown }) {
      const token = await net.getServiceAuth(user, serviceDid, nsid)
      const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : ''
      const res = await fetch(`${serve.url}/xrpc/${nsid}${qs}`, {
        method: opts.input === undefined ? 'GET' : 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          ...(opts.input === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(opts.input === undefined ? {} : { body: JSON.stringify(opts.input) }),
      })
      return { status: res.status, body: (await res.json()) as Record<string, any> }
    }

    const getFeed = async (user: LocalUser, feed: string) => {
      const agent: AtpAgent = net.appviewAgentFor(user) // user → PDS → AppView → Skysift
      appviewGetFeeds++
      const res = await agent.app.bsky.feed.getFeed({ feed, limit: 50 })
      return res.data
    }

    const postsInDb = (): Set<string> => new Set(ctx.db.sqlite.prepare('SELECT uri FROM posts WHERE author = ?').pluck().all(carol.did) as string[])

    beforeAll(async () => {
      let t = performance.now()
      net = await startLocalNetwork()
      timings.networkBootMs = Math.round(performance.now() - t)

      t = performance.now()
      owner = await net.createUser('feedpub')
      alice = await net.createUser('alice')
      bob = await net.createUser('bob')
      carol = await net.createUser('carol')
      timings.usersMs = Math.round(performance.now() - t)

      t = performance.now()
      // every stage in this process on the PDS firehose, the feed generator records the AppView routes getFeed by published
      sky = await startLocalSkysift(net, owner, { edge: via === 'edge' })
      ctx = sky.ctx
      serve = sky.front
      serviceDid = sky.serviceDid
      tap = tapResponses(serve.server as Server, [`/xrpc/${SKELETON}`])
      feedUri.fresh = sky.feeds.fresh
      feedUri.science = sky.feeds.science
      timings.skysiftStartMs = Math.round(performance.now() - t)
    }, STEP_TIMEOUT)

    afterAll(async () => {
      const t = performance.now()
      const errors: unknown[] = []
      tap?.detach()
      await sky?.stop().catch((e) => errors.push(e))
      await net?.close().catch((e) => errors.push(e))
      timings.cleanupMs = Math.round(performance.now() - t)
      console.log(`[feed.e2e] timings ${JSON.stringify(timings)}`)
      if (errors.length) throw errors[0]
    }, STEP_TIMEOUT)

    it(
      "ingests carol's posts from the PDS firehose through the score and store stages",
      async () => {
        const t0 = Date.now()
        for (const [k, p] of Object.entries(POSTS) as [PostKey, (typeof POSTS)[PostKey]][]) {
          const r = await carol.agent.post({ text: p.text, langs: [...p.langs], createdAt: new Date(t0 - p.ageMs).toISOString() })
          uri[k] = r.uri
          keyOf.set(r.uri, k)
        }
        const t = performance.now()
        const all = Object.values(uri)
        await until("all of carol's posts in SQLite", () => {
          const have = postsInDb()
          return all.every((u) => have.has(u)) || false
        })
        timings.ingestMs = Math.round(performance.now() - t)
        const row = ctx.db.sqlite.prepare('SELECT created_at AS createdAt, langs, text FROM posts WHERE uri = ?').get(uri.oldTelescope) as {
          createdAt: number
          langs: string
          text: string
        }
        // createdAt comes from the record (an old post stays old), langs normalized
        expect(row.createdAt).toBe(Date.parse(new Date(t0 - POSTS.oldTelescope.ageMs).toISOString()))
        expect(JSON.parse(row.langs)).toEqual(['en'])
        expect(ctx.db.sqlite.prepare('SELECT count(*) FROM rejected_events').pluck().get()).toBe(0)
        // the AppView must know the posts too, or it could not hydrate them
        await net.processAll()
      },
      STEP_TIMEOUT,
    )

    it(
      "saves each subscriber's private mix (PDS proxy and direct service auth) and rejects invalid ones naming the field",
      async () => {
        // alice, through her PDS
        const put = await viaPds(alice, PUT_MIX, { input: { feed: feedUri.science, agents: ALICE_MIX } })
        expect(put.status, JSON.stringify(put.body)).toBe(200)
        ourLexicons.assertValidXrpcOutput(PUT_MIX, put.body)
        expect(put.body.feed).toBe(feedUri.science)
        expect(put.body.agents).toEqual(ALICE_MIX)
        fingerprint.alice = put.body.fingerprint
        expect(fingerprint.alice).toMatch(/^[0-9a-f]{16}$/)

        // bob, with a token he got from his PDS, straight to our endpoint
        const putBob = await direct(bob, PUT_MIX, { input: { feed: feedUri.science, agents: BOB_MIX } })
        expect(putBob.status, JSON.stringify(putBob.body)).toBe(200)
        ourLexicons.assertValidXrpcOutput(PUT_MIX, putBob.body)
        expect(putBob.body.agents).toEqual(BOB_MIX)
        fingerprint.bob = putBob.body.fingerprint
        expect(fingerprint.bob).toMatch(/^[0-9a-f]{16}$/)
        expect(fingerprint.bob).not.toBe(fingerprint.alice)

        // each reads back their own, both ways
        for (const [who, call] of [
          ['alice', (nsid: string, o: { query: Record<string, string> }) => viaPds(alice, nsid, o)],
          ['bob', (nsid: string, o: { query: Record<string, string> }) => direct(bob, nsid, o)],
        ] as const) {
          const got = await call(GET_MIX, { query: { feed: feedUri.science } })
          expect(got.status, JSON.stringify(got.body)).toBe(200)
          ourLexicons.assertValidXrpcOutput(GET_MIX, got.body)
          expect(got.body).toMatchObject({
            feed: feedUri.science,
            source: 'private',
            agents: who === 'alice' ? ALICE_MIX : BOB_MIX,
            fingerprint: who === 'alice' ? fingerprint.alice : fingerprint.bob,
          })
          expect(Date.parse(got.body.updatedAt)).toBeGreaterThan(Date.now() - 10 * MIN)
        }
        // the other way round too (mixes are per subscriber, not per transport)
        const aliceDirect = await direct(alice, GET_MIX, { query: { feed: feedUri.science } })
        expect(aliceDirect.body).toMatchObject({ source: 'private', fingerprint: fingerprint.alice })
        // a feed alice never configured: the feed's default
        const freshMix = await viaPds(alice, GET_MIX, { query: { feed: feedUri.fresh } })
        expect(freshMix.status).toBe(200)
        expect(freshMix.body.source).toBe('default')
        expect(freshMix.body.agents).toEqual(ctx.feeds.find((f) => f.rkey === 'fresh')!.defaultMix)
        // no token → 401
        const anon = await fetch(`${serve.url}/xrpc/${GET_MIX}?feed=${encodeURIComponent(feedUri.science)}`)
        expect(anon.status).toBe(401)

        // invalid mixes: 400, the message names the bad field
        const bad: { name: string; agents: unknown[]; error: string; field: RegExp }[] = [
          {
            name: 'unknown agent',
            agents: [
              { agent: 'recency', weight: 10 },
              { agent: 'astrology', weight: 10 },
            ],
            error: 'InvalidMix',
            field: /agents\.1\b.*astrology/,
          },
          {
            name: 'weight 500',
            agents: [
              { agent: 'recency', weight: 10 },
              { agent: 'keyword', weight: 500, options: { include: ['x'] } },
            ],
            error: 'InvalidMix',
            field: /agents\.1\.weight/,
          },
          {
            name: 'bad option type',
            agents: [{ agent: 'recency', weight: 10, options: { halfLifeHours: 'soon' } }],
            error: 'InvalidMix',
            field: /agents\.0\.options\.halfLifeHours/,
          },
        ]
        for (const b of bad) {
          for (const [how, res] of [
            ['via PDS', await viaPds(alice, PUT_MIX, { input: { feed: feedUri.science, agents: b.agents } })],
            ['direct', await direct(alice, PUT_MIX, { input: { feed: feedUri.science, agents: b.agents } })],
          ] as const) {
            expect(res.status, `${b.name} ${how}: ${JSON.stringify(res.body)}`).toBe(400)
            expect(res.body.error, `${b.name} ${how}`).toBe(b.error)
            expect(res.body.message, `${b.name} ${how}`).toMatch(b.field)
          }
        }
        // and nothing was overwritten
        const after = await viaPds(alice, GET_MIX, { query: { feed: feedUri.science } })
        expect(after.body).toMatchObject({ source: 'private', fingerprint: fingerprint.alice, agents: ALICE_MIX })
      },
      STEP_TIMEOUT,
    )

    it(
      'serves alice and bob their own ranking, hydrated by the AppView, with feedContext and reqId passed through',
      async () => {
        const t = performance.now()
        const aliceFeed = await getFeed(alice, feedUri.science)
        const bobFeed = await getFeed(bob, feedUri.science)
        timings.firstGetFeedsMs = Math.round(performance.now() - t)

        expect(keys(aliceFeed.feed.map((i) => i.post.uri))).toEqual(EXPECT.scienceAlice)
        expect(keys(bobFeed.feed.map((i) => i.post.uri))).toEqual(EXPECT.scienceBob)

        // hydrated: real post views with author and record
        const first = aliceFeed.feed[0]!
        expect(first.post.author.did).toBe(carol.did)
        expect(first.post.author.handle).toBe(carol.handle)
        expect((first.post.record as { text: string }).text).toBe(POSTS.telescope.text)
        expect((bobFeed.feed[0]!.post.record as { langs?: string[] }).langs).toEqual(['es'])

        // feedContext: our attribution, per item, with the reader's mix fingerprint
        for (const [data, fp] of [
          [aliceFeed, fingerprint.alice],
          [bobFeed, fingerprint.bob],
        ] as const) {
          for (const item of data.feed) expect(item.feedContext).toMatch(new RegExp(`^v1\\|${fp}\\|`))
        }
        // alice's top post: her telescope keyword (+100) leads, then the feed's topic filter (+20), then a
        // little recency (at most 10). Which keyword entry gets the plain label is the ranker's business.
        const why = decodeFeedContext(first.feedContext!)!
        expect(why.fingerprint).toBe(fingerprint.alice)
        expect(why.contributions.map((c) => c.label.replace(/#\d+$/, ''))).toEqual(['keyword', 'keyword', 'recency'])
        expect(why.contributions.map((c) => c.value).slice(0, 2)).toEqual([100, 20])
        expect(why.contributions[2]!.value).toBeGreaterThan(0)
        expect(why.contributions[2]!.value).toBeLessThanOrEqual(10)
        // bob's top post is the newest candidate: full recency, topic filter, no telescope penalty
        const whyBob = decodeFeedContext(bobFeed.feed[0]!.feedContext!)!
        expect(whyBob.fingerprint).toBe(fingerprint.bob)
        expect(whyBob.contributions.map((c) => [c.label.replace(/#\d+$/, ''), c.value])).toEqual([
          ['recency', 100],
          ['keyword', 20],
        ])

        // reqId: the one our skeleton response carried, on every item of that response
        for (const data of [aliceFeed, bobFeed]) {
          const ids = new Set(data.feed.map((i) => i.reqId))
          expect(ids.size).toBe(1)
          const reqId = [...ids][0]!
          expect(reqId).toMatch(/^[0-9a-f]{16}$/)
          const served = tap.seen.filter((s) => s.status === 200 && (JSON.parse(s.body) as SkeletonBody).reqId === reqId)
          expect(served).toHaveLength(1)
          // that skeleton was the AppView's call, made with the user's token minted by their PDS for our DID
          const jwt = decodeJwtPayload(served[0]!.authorization!)
          expect(jwt).toMatchObject({ iss: data === aliceFeed ? alice.did : bob.did, aud: serviceDid, lxm: SKELETON })
          expect(keys((JSON.parse(served[0]!.body) as SkeletonBody).feed.map((i) => i.post))).toEqual(
            data === aliceFeed ? EXPECT.scienceAlice : EXPECT.scienceBob,
          )
        }
        expect(aliceFeed.feed[0]!.reqId).not.toBe(bobFeed.feed[0]!.reqId)

        // the same ranking on the skeleton straight from us, and anonymous readers get the default
        // (an edge serves the list the primary last published: the one rebuilt when the posts came, a moment later)
        await eventually('the default ranking for anonymous readers', async () => {
          expect(skeletonKeys(await skeleton(feedUri.science))).toEqual(EXPECT.scienceDefault)
        })
        appviewGetFeeds++
        const anonViaAppview = await net.appviewAgentFor(null).app.bsky.feed.getFeed({ feed: feedUri.science })
        expect(keys(anonViaAppview.data.feed.map((i) => i.post.uri))).toEqual(EXPECT.scienceDefault)

        // nobody saved a mix for "fresh": both get its default, which has no topic filter and a 24 h window
        for (const u of [alice, bob]) {
          await eventually("fresh's default", async () => {
            const fresh = await getFeed(u, feedUri.fresh)
            expect(keys(fresh.feed.map((i) => i.post.uri))).toEqual(EXPECT.freshDefault)
            expect(fresh.feed[0]!.feedContext).toMatch(
              new RegExp(`^v1\\|${ctx.feeds.find((f) => f.rkey === 'fresh')!.defaults.fingerprint}\\|recency:\\+70\\|fresh$`),
            )
          })
        }

        // a later read after the cache TTL is answered from the old list while a refresh worker
        // rebuilds it; the rebuilt list has the same order
        const latestSnapshot = () =>
          ctx.db.sqlite
            .prepare('SELECT max(id) FROM feed_snapshots WHERE feed = ? AND fingerprint = ?')
            .pluck()
            .get(feedUri.science, fingerprint.alice) as number
        const before = latestSnapshot()
        await until(
          "a refreshed snapshot of alice's list",
          async () => {
            const again = await getFeed(alice, feedUri.science)
            expect(keys(again.feed.map((i) => i.post.uri))).toEqual(EXPECT.scienceAlice)
            return latestSnapshot() > before
          },
          30_000,
          300,
        )
      },
      STEP_TIMEOUT,
    )

    it(
      "drops a post carol deletes from everyone's feed",
      async () => {
        const gone = uri[DELETED]
        const aliceToken = `Bearer ${await net.getServiceAuth(alice, serviceDid, SKELETON)}`
        expect(skeletonKeys(await skeleton(feedUri.science, aliceToken))).toContain(DELETED)

        await carol.agent.deletePost(gone)
        const t = performance.now()
        await until('the delete to reach SQLite', () => !postsInDb().has(gone))
        timings.deleteMs = Math.round(performance.now() - t)
        expect(ctx.db.sqlite.prepare('SELECT 1 FROM tombstones WHERE uri = ?').pluck().get(gone)).toBe(1)
        expect(ctx.db.sqlite.prepare('SELECT count(*) FROM post_deletions WHERE uri = ?').pluck().get(gone)).toBe(1)

        // straight from us (the AppView would hide a post it cannot hydrate, so this is the real proof); an edge node
        // learns of the deletion from what the primary publishes (within a second, docs/scaling.md)
        const t2 = performance.now()
        await eventually('the deleted post gone from every page', async () => {
          expect(skeletonKeys(await skeleton(feedUri.science, aliceToken))).toEqual(without(EXPECT.scienceAlice, DELETED))
          expect(skeletonKeys(await skeleton(feedUri.science))).toEqual(without(EXPECT.scienceDefault, DELETED))
        })
        timings.deleteReachedFrontMs = Math.round(performance.now() - t2)

        // and through the AppView, for both readers, in both feeds
        expect(keys((await getFeed(alice, feedUri.science)).feed.map((i) => i.post.uri))).toEqual(without(EXPECT.scienceAlice, DELETED))
        expect(keys((await getFeed(bob, feedUri.science)).feed.map((i) => i.post.uri))).toEqual(without(EXPECT.scienceBob, DELETED))
        for (const u of [alice, bob]) {
          expect(keys((await getFeed(u, feedUri.fresh)).feed.map((i) => i.post.uri))).toEqual(without(EXPECT.freshDefault, DELETED))
        }
      },
      STEP_TIMEOUT,
    )

    it(
      'serves forged and wrong-audience tokens the default ranking, as if anonymous',
      async () => {
        const expectedDefault = without(EXPECT.scienceDefault, DELETED)
        const expectedAlice = without(EXPECT.scienceAlice, DELETED)
        const anon = skeletonKeys(await skeleton(feedUri.science))
        expect(anon).toEqual(expectedDefault)

        // control: alice's genuine token gets her mix
        const genuine = await net.getServiceAuth(alice, serviceDid, SKELETON)
        expect(skeletonKeys(await skeleton(feedUri.science, `Bearer ${genuine}`))).toEqual(expectedAlice)

        // claims to be alice, signed with a key that is not hers
        const forged = await createServiceJwt({ iss: alice.did, aud: serviceDid, lxm: SKELETON, keypair: await Secp256k1Keypair.create() })
        expect(decodeJwtPayload(forged)).toMatchObject({ iss: alice.did, aud: serviceDid, lxm: SKELETON })
        // really alice's, but for another service
        const wrongAud = await net.getServiceAuth(alice, net.appviewDid, SKELETON)
        // really alice's and for us, but for another method
        const wrongLxm = await net.getServiceAuth(alice, serviceDid, GET_MIX)

        for (const [name, token] of [
          ['forged signature', forged],
          ['wrong audience', wrongAud],
          ['wrong lxm', wrongLxm],
          ['not a JWT', 'not-a-jwt'],
        ] as const) {
          const body = await skeleton(feedUri.science, `Bearer ${token}`)
          expect(skeletonKeys(body), name).toEqual(expectedDefault)
          expect(skeletonKeys(body), name).not.toEqual(expectedAlice)
          const defaultFp = ctx.feeds.find((f) => f.rkey === 'science')!.defaults.fingerprint
          for (const item of body.feed) expect(item.feedContext, name).toMatch(new RegExp(`^v1\\|${defaultFp}\\|`))
        }
      },
      STEP_TIMEOUT,
    )

    it("every getFeedSkeleton response (ours and the AppView's) is valid app.bsky.feed.getFeedSkeleton output", () => {
      const ok = tap.seen.filter((s) => s.url.startsWith(`/xrpc/${SKELETON}`))
      // everything the test asked directly plus the AppView's call for each getFeed above
      expect(appviewGetFeeds).toBeGreaterThanOrEqual(10)
      expect(ok.length).toBeGreaterThanOrEqual(directSkeletonCalls + appviewGetFeeds)
      for (const s of ok) {
        expect(s.status, s.body).toBe(200)
        expect(s.contentType).toMatch(/^application\/json/)
        const body = JSON.parse(s.body) as SkeletonBody
        expect(() => lexicons.assertValidXrpcOutput(SKELETON, body)).not.toThrow()
        expect(body.reqId).toMatch(/^[0-9a-f]{16}$/)
      }
      timings.skeletonResponsesChecked = ok.length
    })
  },
)

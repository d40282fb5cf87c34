/**
 * Public mixes end to end: a subscriber writes `app.skysift.feed.mix`
 * records to their own repo on a real PDS (@atproto/dev-env), Skysift reads
 * them from that PDS's firehose, and the subscriber's getFeedSkeleton and
 * getMix follow the newest record; deletes fall back; a private putMix wins.
 *
 *   alice ──createRecord/deleteRecord──▶ PDS ──firehose──▶ ingest ─▶ score ─▶ store ─▶ SQLite
 *   alice ──getServiceAuth token──▶ our getFeedSkeleton / getMix / putMix
 *
 * Run: npx vitest run test/e2e/mix-record.e2e.test.ts
 * Set SKYSIFT_E2E_LOG=debug (or info/warn) to see Skysift's logs.
 */

import { lexicons } from '@atproto/api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { AppContext } from '../../src/context.ts'
import { loadSkysiftLexicons } from '../../src/serve/lexicons.ts'
import { type LocalNetwork, type LocalUser, startLocalNetwork } from './support/network.ts'
import { type LocalSkysift, startLocalSkysift } from './support/skysift.ts'
import { until } from '../support/resources.ts'

const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const GET_MIX = 'app.skysift.feed.getMix'
const PUT_MIX = 'app.skysift.feed.putMix'
const MIX = 'app.skysift.feed.mix'
const MIN = 60_000
const STEP_TIMEOUT = 120_000
const ourLexicons = loadSkysiftLexicons()

/** Carol's posts, by age when she posts them. "fresh" (no filter, 24 h, recency + engagement) ranks them newest first by default. */
const POSTS = {
  lunch: { text: 'Lunch by the river with old friends', ageMs: 1 * MIN },
  scope: { text: 'Saturn tonight through the telescope, rings and all', ageMs: 20 * MIN },
  bread: { text: 'Baked sourdough bread for the first time', ageMs: 40 * MIN },
  oldScope: { text: 'Cleaning the telescope mirror before the meteor shower', ageMs: 90 * MIN },
} as const
type PostKey = keyof typeof POSTS

/** "telescope talk first, then newest" */
const SCOPE_FIRST = [
  { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
  { agent: 'recency', weight: 10 },
]
/** "no telescope talk up top" */
const SCOPE_LAST = [
  { agent: 'keyword', weight: -100, options: { include: ['telescope'] } },
  { agent: 'recency', weight: 10 },
]
/** "oldest first" */
const OLDEST_FIRST = [{ agent: 'recency', weight: -100 }]

const EXPECT = {
  default: ['lunch', 'scope', 'bread', 'oldScope'],
  scopeFirst: ['scope', 'oldScope', 'lunch', 'bread'],
  scopeLast: ['lunch', 'bread', 'scope', 'oldScope'],
  oldestFirst: ['oldScope', 'bread', 'scope', 'lunch'],
} satisfies Record<string, PostKey[]>

interface SkeletonBody {
  feed: { post: string; feedContext?: string }[]
  cursor?: string
}

describe('app.skysift.feed.mix records: written on the PDS, read from its firehose', () => {
  let net: LocalNetwork
  let sky: LocalSkysift
  let ctx: AppContext
  let serve: LocalSkysift['serve']
  let serviceDid: string
  let alice: LocalUser, carol: LocalUser
  let feed: string
  let defaultFp: string
  const keyOf = new Map<string, PostKey>()

  /** one of our XRPC methods, called straight with a token alice's PDS minted for it */
  async function call(user: LocalUser, nsid: string, opts: { query?: Record<string, string>; input?: unknown } = {}) {
    const token = await net.getServiceAuth(user, serviceDid, nsid)
    const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : ''
    const res = await fetch(`${serve.url}/xrpc/${nsid}${qs}`, {
      method: opts.input === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(opts.input === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(opts.input === undefined ? {} : { body: JSON.stringify(opts.input) }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, any> }
  }

  /** alice's page of "fresh", as post keys, checking the response on the way */
  async function aliceFeed(): Promise<{ keys: string[]; fingerprints: Set<string> }> {
    const res = await call(alice, SKELETON, { query: { feed, limit: '50' } })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    lexicons.assertValidXrpcOutput(SKELETON, res.body)
    const body = res.body as SkeletonBody
    return {
      keys: body.feed.map((i) => keyOf.get(i.post) ?? i.post),
      fingerprints: new Set(body.feed.map((i) => i.feedContext!.split('|')[1]!)),
    }
  }

  async function aliceMix() {
    const res = await call(alice, GET_MIX, { query: { feed } })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    ourLexicons.assertValidXrpcOutput(GET_MIX, res.body)
    return res.body
  }

  /** alice's 'record' row for "fresh" as the store has it right now */
  const storedRecordMix = () =>
    ctx.db.sqlite.prepare(`SELECT agents FROM mixes WHERE subscriber = ? AND feed = ? AND source = 'record'`).pluck().get(alice.did, feed) as string | undefined

  async function writeRecord(agents: unknown[], createdAt: Date): Promise<{ uri: string; rkey: string }> {
    const res = await alice.agent.com.atproto.repo.createRecord({
      repo: alice.did,
      collection: MIX,
      // the PDS does not know our lexicon
      validate: false,
      record: { $type: MIX, feed, agents, createdAt: createdAt.toISOString() },
    })
    const rkey = res.data.uri.split('/').pop()!
    expect(rkey).toMatch(/^[234567a-z]{13}$/)
    return { uri: res.data.uri, rkey }
  }

  const deleteRecord = (rkey: string) => alice.agent.com.atproto.repo.deleteRecord({ repo: alice.did, collection: MIX, rkey })

  beforeAll(async () => {
    net = await startLocalNetwork()
    const owner = await net.createUser('mixfeedpub')
    alice = await net.createUser('mixalice')
    carol = await net.createUser('mixcarol')

    sky = await startLocalSkysift(net, owner, { publish: false })
    ctx = sky.ctx
    serve = sky.serve
    serviceDid = sky.serviceDid
    const fresh = ctx.feeds.find((f) => f.rkey === 'fresh')!
    feed = fresh.uri
    defaultFp = fresh.defaults.fingerprint

    const t0 = Date.now()
    for (const [k, p] of Object.entries(POSTS) as [PostKey, (typeof POSTS)[PostKey]][]) {
      const r = await carol.agent.post({ text: p.text, langs: ['en'], createdAt: new Date(t0 - p.ageMs).toISOString() })
      keyOf.set(r.uri, k)
    }
    await until("carol's posts in SQLite", () => {
      const have = new Set(ctx.db.sqlite.prepare('SELECT uri FROM posts WHERE author = ?').pluck().all(carol.did) as string[])
      return [...keyOf.keys()].every((u) => have.has(u))
    })
  }, STEP_TIMEOUT)

  afterAll(async () => {
    await sky?.stop()
    await net?.close()
  }, STEP_TIMEOUT)

  it(
    'serves alice the default until she writes a record, then the newest record; deletes fall back, down to the default',
    async () => {
      expect(await aliceFeed()).toEqual({ keys: EXPECT.default, fingerprints: new Set([defaultFp]) })
      expect(await aliceMix()).toMatchObject({ source: 'default', fingerprint: defaultFp })

      // first record: telescope talk first
      const first = await writeRecord(SCOPE_FIRST, new Date(Date.now() - 60_000))
      await until('the first record mix in the store', () => storedRecordMix() === JSON.stringify(SCOPE_FIRST))
      const mix1 = await aliceMix()
      expect(mix1).toMatchObject({ feed, source: 'record', agents: SCOPE_FIRST })
      expect(Date.parse(mix1.updatedAt)).toBeGreaterThan(Date.now() - 10 * MIN)
      const feed1 = await aliceFeed()
      expect(feed1.keys).toEqual(EXPECT.scopeFirst)
      expect(feed1.fingerprints.size).toBe(1)
      expect(feed1.fingerprints.has(defaultFp)).toBe(false)

      // a newer record for the same feed wins
      const secondAt = new Date()
      const second = await writeRecord(SCOPE_LAST, secondAt)
      await until('the second record mix in the store', () => storedRecordMix() === JSON.stringify(SCOPE_LAST))
      expect(await aliceMix()).toMatchObject({ source: 'record', agents: SCOPE_LAST })
      expect((await aliceFeed()).keys).toEqual(EXPECT.scopeLast)

      // an edit of that record in place (same key, same createdAt) applies too
      await alice.agent.com.atproto.repo.putRecord({
        repo: alice.did,
        collection: MIX,
        rkey: second.rkey,
        validate: false,
        record: { $type: MIX, feed, agents: OLDEST_FIRST, createdAt: secondAt.toISOString() },
      })
      await until('the edited record mix in the store', () => storedRecordMix() === JSON.stringify(OLDEST_FIRST))
      expect(await aliceMix()).toMatchObject({ source: 'record', agents: OLDEST_FIRST })
      expect((await aliceFeed()).keys).toEqual(EXPECT.oldestFirst)

      // deleting the newest falls back to the one before
      await deleteRecord(second.rkey)
      await until('the fallback to the first record', () => storedRecordMix() === JSON.stringify(SCOPE_FIRST))
      expect(await aliceMix()).toMatchObject({ source: 'record', agents: SCOPE_FIRST })
      expect((await aliceFeed()).keys).toEqual(EXPECT.scopeFirst)

      // and deleting that one returns her to the feed's default
      await deleteRecord(first.rkey)
      await until('no record mix left', () => storedRecordMix() === undefined)
      expect(await aliceMix()).toMatchObject({ source: 'default', fingerprint: defaultFp })
      expect(await aliceFeed()).toEqual({ keys: EXPECT.default, fingerprints: new Set([defaultFp]) })
      expect(ctx.db.sqlite.prepare('SELECT count(*) FROM mix_records').pluck().get()).toBe(0)
      expect(ctx.db.sqlite.prepare('SELECT count(*) FROM tombstones WHERE uri IN (?, ?)').pluck().get(first.uri, second.uri)).toBe(2)
      expect(ctx.db.sqlite.prepare('SELECT count(*) FROM rejected_events').pluck().get()).toBe(0)
    },
    STEP_TIMEOUT,
  )

  it(
    'lets a private putMix win over a record, even one written after it',
    async () => {
      await writeRecord(SCOPE_FIRST, new Date())
      await until('the record mix in the store', () => storedRecordMix() === JSON.stringify(SCOPE_FIRST))
      expect((await aliceFeed()).keys).toEqual(EXPECT.scopeFirst)

      const put = await call(alice, PUT_MIX, { input: { feed, agents: OLDEST_FIRST } })
      expect(put.status, JSON.stringify(put.body)).toBe(200)
      expect(await aliceMix()).toMatchObject({ source: 'private', agents: OLDEST_FIRST, fingerprint: put.body.fingerprint })
      expect(await aliceFeed()).toEqual({ keys: EXPECT.oldestFirst, fingerprints: new Set([put.body.fingerprint]) })

      // a record written after the private mix still does not beat it
      await writeRecord(SCOPE_LAST, new Date())
      await until('the newer record mix in the store', () => storedRecordMix() === JSON.stringify(SCOPE_LAST))
      expect(await aliceMix()).toMatchObject({ source: 'private', agents: OLDEST_FIRST })
      expect((await aliceFeed()).keys).toEqual(EXPECT.oldestFirst)
      // the records carry their commit's repo revision, so a stale update can never overwrite a newer one
      const revs = ctx.db.sqlite.prepare('SELECT rev FROM mix_records WHERE author = ?').pluck().all(alice.did) as string[]
      expect(revs).toHaveLength(2)
      for (const rev of revs) expect(rev).toMatch(/^[234567a-j][234567a-z]{12}$/)
    },
    STEP_TIMEOUT,
  )
})

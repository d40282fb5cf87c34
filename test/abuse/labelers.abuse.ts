/**
 * Abuse — labeler fan-out. A signed-in reader names labelers whose DID
 * documents (which their owners write) point at slow, failing and shared
 * hosts; the server and a refresh worker run as real processes, the labelers
 * are real HTTP servers on loopback that count what reaches them. Checked:
 * a mix naming more labelers than the cap is refused before any of them is
 * contacted; the requests an abusive mix causes are bounded (failing and
 * slow labelers are paused, a host's budget holds); another reader's
 * labeler is asked within one round of turns and that reader's labelled
 * post leaves their feed, at the cost a baseline reader paid in the same run.
 */
import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PostEvent } from '../../src/contracts/events.ts'
import type { Proc } from '../faults/support/procs.ts'
import { postEvent } from '../support/builders.ts'
import { startIdentities, type TestUser } from '../support/identity.ts'
import { until } from '../support/resources.ts'
import { FRESH as FEED, SERVICE, startServer } from './support/server.ts'

const POSTS = 1000
const BATCH = 50
const PER_MIX = 6
const PER_HOST_PER_MIN = 30
/** the serving process and the refresh worker each fetch labels for the lists they rank */
const PROCESSES = 2
/** how long a slow labeler takes to answer: longer than the server's 3 s deadline */
const SLOW_MS = 5000

type Behaviour = 'ok' | 'slow' | 'fail'

interface Arrival {
  name: string
  at: number
  uris: string[]
}

interface LabelerServer {
  name: string
  did: string
  server: ServerType
  /** queryLabels requests received */
  queries: number
  /** DID document requests received */
  docs: number
}

describe('abuse: labeler fan-out (real serve and refresh processes, real labeler servers on loopback)', () => {
  const arrivals: Arrival[] = []
  const servers = new Map<string, LabelerServer>()
  const cleanups: (() => unknown)[] = []
  const procs: Proc[] = []
  let base = ''
  let users: Record<string, TestUser>
  let posts: PostEvent[]

  /** A labeler on its own port; its DID document names `endpointOf()` (itself unless told) as its service. */
  async function labeler(name: string, behaviour: Behaviour, spam: string[] = [], endpointOf?: () => string): Promise<LabelerServer> {
    const app = new Hono()
    const me: LabelerServer = { name, did: '', server: null as unknown as ServerType, queries: 0, docs: 0 }
    app.get('/.well-known/did.json', (c) => {
      me.docs++
      return c.json({
        id: me.did,
        service: [
          {
            id: '#atproto_labeler',
            type: 'AtprotoLabeler',
            serviceEndpoint: endpointOf ? endpointOf() : `http://localhost:${(me.server.address() as AddressInfo).port}`,
          },
        ],
      })
    })
    app.get('/xrpc/com.atproto.label.queryLabels', async (c) => {
      me.queries++
      const uris = c.req.queries('uriPatterns') ?? []
      arrivals.push({ name, at: Date.now(), uris })
      if (behaviour === 'fail') return c.json({ error: 'InternalServerError' }, 500)
      if (behaviour === 'slow') await new Promise((r) => setTimeout(r, SLOW_MS))
      const src = c.req.query('sources') ?? ''
      return c.json({ labels: uris.filter((u) => spam.includes(u)).map((uri) => ({ src, uri, val: 'spam', cts: new Date(0).toISOString() })) })
    })
    me.server = await new Promise((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    me.did = `did:web:localhost%3A${(me.server.address() as AddressInfo).port}`
    servers.set(name, me)
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          ;(me.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
          me.server.close(() => r())
        }),
    )
    return me
  }

  const xrpc = async (method: 'GET' | 'POST', nsid: string, user: TestUser | null, params: Record<string, string> = {}, body?: unknown) => {
    const headers: Record<string, string> = {}
    if (user) headers.authorization = `Bearer ${await user.token(SERVICE, nsid)}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${base}/xrpc/${nsid}?${new URLSearchParams(params)}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as any }
  }
  const page = async (user: TestUser) => {
    const r = await xrpc('GET', 'app.bsky.feed.getFeedSkeleton', user, { feed: FEED, limit: '30' })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    return (r.body.feed as { post: string }[]).map((i) => i.post)
  }
  const labelsMix = (labelers: string[]) => [
    { agent: 'labels', weight: 10, options: { drop: ['spam'], labelers } },
    { agent: 'recency', weight: 60 },
  ]
  const abusive = () => arrivals.filter((a) => !a.name.startsWith('good'))

  beforeAll(async () => {
    const ids = await startIdentities(['attacker', 'reader', 'baseline'])
    users = ids.users
    cleanups.push(ids.close)
    // the newest posts are the ones the good labelers label, so they are on every first page until dropped
    posts = Array.from({ length: POSTS }, (_, i) =>
      postEvent({ author: `did:plc:author${String(i % 40).padStart(20, 'a')}`, text: `post ${i}`, minutesAgo: POSTS - i }),
    )
    const server = await startServer({
      stages: ['serve', 'refresh'],
      posts,
      env: {
        SKYSIFT_ALLOW_INSECURE_HTTP: 'true',
        SKYSIFT_CACHE_TTL_S: '1',
        SKYSIFT_LABELERS_PER_MIX: String(PER_MIX),
        SKYSIFT_LABELER_CONCURRENCY: '2',
        SKYSIFT_LABELER_REQUESTS_PER_MIN: String(PER_HOST_PER_MIN),
      },
    })
    base = server.base
    procs.push(...server.procs)
    cleanups.push(server.close)
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('refuses a mix naming more distinct labelers than the cap, before contacting any of them', async () => {
    const many = Array.from({ length: 16 }, (_, i) => ({
      agent: 'labels',
      weight: 1,
      options: { labelers: Array.from({ length: 10 }, (_, j) => `did:web:labeler-${i}-${j}.example`) },
    }))
    const r = await xrpc('POST', 'app.skysift.feed.putMix', users.attacker, {}, { feed: FEED, agents: many })
    expect(r.status).toBe(400)
    expect(r.body.error).toBe('InvalidMix')
    expect(r.body.message).toMatch(new RegExp(`160 distinct labelers; at most ${PER_MIX}`))

    const local = await Promise.all(Array.from({ length: PER_MIX + 1 }, (_, i) => labeler(`extra${i}`, 'ok')))
    const over = await xrpc('POST', 'app.skysift.feed.putMix', users.attacker, {}, { feed: FEED, agents: labelsMix(local.map((l) => l.did)) })
    expect(over.status).toBe(400)
    const preview = await xrpc('POST', 'app.skysift.feed.previewMix', null, {}, { feed: FEED, agents: labelsMix(local.map((l) => l.did)) })
    expect(preview.status).toBe(400)
    await new Promise((r) => setTimeout(r, 500))
    expect(local.map((l) => l.docs + l.queries)).toEqual(local.map(() => 0))
  })

  it("bounds an abusive mix's requests and still serves another reader's labeler within one round", async () => {
    const spamFor = (i: number) => [posts[POSTS - 1 - i].uri]
    const wanted = Math.ceil(POSTS / BATCH)

    // baseline: one reader, one labeler, nothing else going on
    const g0 = await labeler('good-baseline', 'ok', spamFor(0))
    expect((await xrpc('POST', 'app.skysift.feed.putMix', users.baseline, {}, { feed: FEED, agents: labelsMix([g0.did]) })).status).toBe(200)
    expect(await page(users.baseline)).toContain(spamFor(0)[0])
    await until("the baseline reader's labelled post leaves their feed", async () => !(await page(users.baseline)).includes(spamFor(0)[0]), 60_000, 300)
    const baselineQueries = g0.queries
    expect(baselineQueries).toBeGreaterThanOrEqual(wanted)

    // the abusive mix: labelers that hang, labelers that fail, and two DIDs whose documents name one shared host
    const victim = await labeler('victim', 'ok')
    const victimUrl = () => `http://localhost:${(victim.server.address() as AddressInfo).port}`
    const hostile = [
      await labeler('slow1', 'slow'),
      await labeler('slow2', 'slow'),
      await labeler('fail1', 'fail'),
      await labeler('fail2', 'fail'),
      await labeler('alias1', 'ok', [], victimUrl),
      await labeler('alias2', 'ok', [], victimUrl),
    ]
    expect(hostile).toHaveLength(PER_MIX)
    const g1 = await labeler('good-reader', 'ok', spamFor(1))
    const t0 = Date.now()
    expect((await xrpc('POST', 'app.skysift.feed.putMix', users.attacker, {}, { feed: FEED, agents: labelsMix(hostile.map((l) => l.did)) })).status).toBe(200)
    await page(users.attacker)
    // the abusive labelers are busy (slow ones hold their turns) when the other reader arrives
    await until('the abusive labelers are being asked', () => abusive().some((a) => a.name.startsWith('slow')), 30_000, 20)
    expect((await xrpc('POST', 'app.skysift.feed.putMix', users.reader, {}, { feed: FEED, agents: labelsMix([g1.did]) })).status).toBe(200)
    const readAt = Date.now()
    expect(await page(users.reader)).toContain(spamFor(1)[0])
    await until("the other reader's labeler is asked", () => g1.queries > 0, 60_000, 20)
    const firstGood = arrivals.find((a) => a.name === 'good-reader')!.at
    const before = abusive().filter((a) => a.at >= readAt && a.at <= firstGood).length
    // @NOTE one turn per labeler and process comes before it at most; first come, first served would send every queued batch first
    expect(before).toBeLessThanOrEqual(PER_MIX * PROCESSES)

    let reads = 0
    await until(
      "the other reader's labelled post leaves their feed",
      async () => {
        reads++
        if (reads % 3 === 0) await page(users.attacker)
        return !(await page(users.reader)).includes(spamFor(1)[0])
      },
      60_000,
      300,
    )
    // the other reader's labeler cost what the baseline's did
    expect(g1.queries).toBeLessThanOrEqual(baselineQueries * 1.5 + PROCESSES)

    const elapsed = Date.now() - t0
    const minutes = Math.ceil(elapsed / 60_000)
    const count = (name: string) => servers.get(name)!.queries
    // a failing or hanging labeler is asked once per process, then paused for 30 s (and longer after each failure)
    const perFailing = PROCESSES * (1 + Math.floor(elapsed / 30_000))
    for (const name of ['slow1', 'slow2', 'fail1', 'fail2']) expect(count(name), name).toBeLessThanOrEqual(perFailing)
    // two DIDs naming one host share that host's budget
    expect(victim.queries).toBeLessThanOrEqual(PER_HOST_PER_MIN * PROCESSES * minutes)
    const total = hostile.reduce((n, l) => n + l.queries, 0) + victim.queries
    const unbounded = PER_MIX * wanted * PROCESSES
    expect(total).toBeLessThanOrEqual(4 * perFailing + PER_HOST_PER_MIN * PROCESSES * minutes)
    expect(total).toBeLessThan(unbounded)
    for (const p of procs) expect(p.unexpectedExits(), p.tail()).toEqual([])
  })
})

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startExampleAgent, type ScoreRequest } from '../examples/remote-agent/server.ts'
import { checkScores } from '../src/score/scores.ts'
import { hashDid, loadRemoteAgent, type RemoteAgentConfig, type RemoteAgentDefinition } from '../src/score/remote.ts'
import { nonPublicReason, SsrfError } from '../src/score/guarded-fetch.ts'
import type { AgentPost, Score } from '../src/score/sdk.ts'

const ALICE = 'did:plc:alicealicealicealice00'
const BOB = 'did:plc:bobbobbobbobbobbobbob00'

function post(i: number, over: Partial<AgentPost> = {}): AgentPost {
  return {
    uri: `at://${ALICE}/app.bsky.feed.post/p${i}`,
    author: ALICE,
    createdAt: 1_700_000_000_000 + i,
    text: `post ${i}`,
    langs: ['en'],
    tags: ['tag'],
    labels: [],
    embed: null,
    quote: null,
    replyRoot: null,
    replyParent: null,
    likeCount: 3,
    repostCount: 1,
    ...over,
  }
}

const ctx = (options: unknown = {}, signal: AbortSignal = new AbortController().signal) => ({ options, now: 1_700_000_100_000, signal })

// ---------------------------------------------------------------------------
// small real HTTP servers for the misbehaving endpoints

type Handler = (body: any, res: http.ServerResponse) => void

interface TestServer {
  url: string
  hits: { meta: number; score: number }
  bodies: any[]
  rawBodies: string[]
  meta: Record<string, unknown>
  score: Handler
  close(): Promise<void>
}

const okScores: Handler = (body, res) => json(res, 200, { scores: body.posts.map(() => 1) })

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) })
  res.end(s)
}

const servers: TestServer[] = []
const defs: RemoteAgentDefinition[] = []

async function testServer(meta: Record<string, unknown> = {}, score: Handler = okScores): Promise<TestServer> {
  const ts: TestServer = {
    url: '',
    hits: { meta: 0, score: 0 },
    bodies: [],
    rawBodies: [],
    meta: {
      id: 'test-agent',
      version: '1.0.0',
      title: 'Test',
      description: 'a test agent',
      api: 1,
      options: { type: 'object', properties: {} },
      needs: ['text'],
      ...meta,
    },
    score,
    close: async () => {},
  }
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c)
    if (req.url === '/meta') {
      ts.hits.meta++
      return json(res, 200, ts.meta)
    }
    if (req.url === '/score') {
      ts.hits.score++
      const raw = Buffer.concat(chunks).toString('utf8')
      ts.rawBodies.push(raw)
      const body = JSON.parse(raw)
      ts.bodies.push(body)
      return ts.score(body, res)
    }
    json(res, 404, { error: 'NotFound' })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  ts.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  ts.close = () =>
    new Promise<void>((r) => {
      server.close(() => r())
      server.closeAllConnections()
    })
  servers.push(ts)
  return ts
}

async function load(cfg: Partial<RemoteAgentConfig> & { url: string }, fetchImpl?: typeof fetch): Promise<RemoteAgentDefinition> {
  const def = await loadRemoteAgent({ salt: 'salt-one', allowPrivateNetwork: true, ...cfg }, fetchImpl)
  defs.push(def)
  return def
}

afterEach(() => {
  for (const d of defs.splice(0)) d.close()
})
afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

// ---------------------------------------------------------------------------

describe('remote agent: the example question-lover', () => {
  let agent: { url: string; close: () => Promise<void> }
  const seen: ScoreRequest[] = []

  beforeAll(async () => {
    agent = await startExampleAgent({ port: 0, host: '127.0.0.1', onScore: (r) => seen.push(r) })
  })
  afterAll(() => agent.close())
  afterEach(() => {
    seen.length = 0
  })

  it('loads /meta into a definition with a zod options schema', async () => {
    const def = await load({ url: agent.url })
    expect(def).toMatchObject({ kind: 'remote', id: 'question-lover', version: '1.0.0', api: 1, needs: ['text'], author: 'skysift examples' })
    expect(def.options.parse({})).toEqual({ boost: 1, dropStatements: false })
    expect(def.options.safeParse({ boost: 99 }).success).toBe(false)
    expect(def.options.safeParse({ boost: 'x' }).success).toBe(false)
  })

  it('scores posts, with options, and the output passes checkScores', async () => {
    const def = await load({ url: agent.url })
    const posts = [post(1, { text: 'Is this a question?' }), post(2, { text: 'A statement.' }), post(3, { text: '   ' }), post(4, { text: 'why？' })]
    const out = await def.scoreBatchAsync(posts, ctx(def.options.parse({ boost: 3 })))
    expect(out).toEqual([3, 0, null, 3])
    expect(checkScores(out, posts.length)).toBeNull()
    const dropping = await def.scoreBatchAsync(posts, ctx(def.options.parse({ dropStatements: true })))
    expect(dropping).toEqual([1, 'drop', null, 1])
    expect(def.remoteStats()).toMatchObject({ calls: 2, requests: 2, failures: 0, open: false, lastError: null })
  })

  it('sends only uri, createdAt and the declared fields, with the author DID hashed out of the uri', async () => {
    const def = await load({ url: agent.url })
    await def.scoreBatchAsync([post(1, { replyParent: `at://${BOB}/app.bsky.feed.post/x` })], ctx(def.options.parse({})))
    expect(seen).toHaveLength(1)
    const req = seen[0]
    expect(req).toMatchObject({ api: 1, agent: 'question-lover', options: { boost: 1, dropStatements: false }, now: 1_700_000_100_000 })
    expect(Object.keys(req.posts[0]).sort()).toEqual(['createdAt', 'text', 'uri'])
    expect(req.posts[0].uri).toBe(`at://${hashDid('salt-one', ALICE)}/app.bsky.feed.post/p1`)
    expect(JSON.stringify(req)).not.toContain('did:')
  })

  it('splits big batches into requests of batchSize, keeping order', async () => {
    const def = await load({ url: agent.url, batchSize: 40 })
    const posts = Array.from({ length: 250 }, (_, i) => post(i, { text: i % 3 === 0 ? `q${i}?` : `s${i}` }))
    const out = await def.scoreBatchAsync(posts, ctx(def.options.parse({ boost: 2 })))
    expect(out).toEqual(posts.map((_, i) => (i % 3 === 0 ? 2 : 0)))
    expect(seen.map((r) => r.posts.length).sort((a, b) => a - b)).toEqual([10, 40, 40, 40, 40, 40, 40])
    expect(await def.scoreBatchAsync([], ctx({}))).toEqual([])
  })

  it('caps batchSize at 100 posts per request', async () => {
    const def = await load({ url: agent.url, batchSize: 1000 })
    await def.scoreBatchAsync(
      Array.from({ length: 150 }, (_, i) => post(i)),
      ctx(def.options.parse({})),
    )
    expect(seen.map((r) => r.posts.length).sort((a, b) => a - b)).toEqual([50, 100])
  })
})

describe('remote agent: privacy', () => {
  const p = post(1, {
    author: BOB,
    uri: `at://${BOB}/app.bsky.feed.post/r1`,
    replyRoot: `at://${BOB}/app.bsky.feed.post/root`,
    replyParent: `at://${ALICE}/app.bsky.feed.post/parent`,
    quote: `at://${ALICE}/app.bsky.feed.post/quoted`,
    embed: 'record',
  })

  it('hashes DIDs (author and inside URIs) with the per-agent salt, stably', async () => {
    const ts = await testServer({ needs: ['author', 'reply', 'embed'] })
    const a = await load({ url: ts.url, salt: 'salt-one' })
    const b = await load({ url: ts.url, salt: 'salt-two' })
    await a.scoreBatchAsync([p], ctx())
    await a.scoreBatchAsync([p], ctx())
    await b.scoreBatchAsync([p], ctx())
    const [first, again, other] = ts.bodies.map((x) => x.posts[0])
    expect(first.author).toMatch(/^h:[a-z2-7]{24}$/)
    expect(first.author).toBe(hashDid('salt-one', BOB))
    expect(again).toEqual(first)
    expect(other.author).not.toBe(first.author)
    expect(other.author).toBe(hashDid('salt-two', BOB))
    // the same DID hashes the same everywhere, so "reply to own post" is still visible
    expect(first.uri).toBe(`at://${first.author}/app.bsky.feed.post/r1`)
    expect(first.replyRoot).toBe(`at://${first.author}/app.bsky.feed.post/root`)
    expect(first.replyParent).toBe(`at://${hashDid('salt-one', ALICE)}/app.bsky.feed.post/parent`)
    expect(first.quote).toBe(`at://${hashDid('salt-one', ALICE)}/app.bsky.feed.post/quoted`)
    expect(first.embed).toBe('record')
    for (const raw of ts.rawBodies) expect(raw).not.toContain('did:plc')
  })

  it('sends raw DIDs when the admin grants it', async () => {
    const ts = await testServer({ needs: ['author', 'reply', 'embed'] })
    const def = await load({ url: ts.url, rawDids: true })
    await def.scoreBatchAsync([p], ctx())
    expect(ts.bodies[0].posts[0]).toMatchObject({ uri: p.uri, author: BOB, replyRoot: p.replyRoot, replyParent: p.replyParent, quote: p.quote })
  })

  it('sends only the declared fields', async () => {
    const cases: [string[], string[]][] = [
      [[], ['createdAt', 'uri']],
      [
        ['engagement', 'time'],
        ['createdAt', 'likeCount', 'repostCount', 'uri'],
      ],
      [
        ['langs', 'tags', 'labels'],
        ['createdAt', 'labels', 'langs', 'tags', 'uri'],
      ],
      [['reply'], ['createdAt', 'replyParent', 'replyRoot', 'uri']],
      [['embed'], ['createdAt', 'embed', 'quote', 'uri']],
      [['author'], ['author', 'createdAt', 'uri']],
    ]
    for (const [needs, keys] of cases) {
      const ts = await testServer({ needs })
      const def = await load({ url: ts.url })
      await def.scoreBatchAsync([p], ctx())
      expect(Object.keys(ts.bodies[0].posts[0]).sort(), needs.join(',')).toEqual(keys)
      expect(Object.keys(ts.bodies[0]).sort()).toEqual(['agent', 'api', 'now', 'options', 'posts'])
    }
  })

  it('sends a candidates agent the whole list in one request', async () => {
    const ts = await testServer({ needs: ['author', 'candidates'] })
    const def = await load({ url: ts.url, batchSize: 10 })
    const out = await def.scoreBatchAsync(
      Array.from({ length: 35 }, (_, i) => post(i)),
      ctx(),
    )
    expect(out).toHaveLength(35)
    expect(ts.bodies.map((b) => b.posts.length)).toEqual([35])
  })
})

describe('remote agent: failures are no opinion', () => {
  const posts = [post(1), post(2), post(3)]
  const nulls = [null, null, null]

  it('a hanging endpoint gives null within the deadline', async () => {
    const ts = await testServer({}, () => {
      /* never answers */
    })
    const def = await load({ url: ts.url, deadlineMs: 200 })
    const t0 = performance.now()
    const out = await def.scoreBatchAsync(posts, ctx())
    const elapsed = performance.now() - t0
    expect(out).toEqual(nulls)
    expect(elapsed).toBeLessThan(200 * 4)
    expect(def.remoteStats()).toMatchObject({ requests: 1, failures: 1, timeouts: 1, lastError: 'timed out after 200 ms' })
  })

  it('a body that trickles in past the deadline is cut off too', async () => {
    const ts = await testServer({}, (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"scores":[')
      // never finishes
    })
    const def = await load({ url: ts.url, deadlineMs: 150 })
    const t0 = performance.now()
    expect(await def.scoreBatchAsync(posts, ctx())).toEqual(nulls)
    expect(performance.now() - t0).toBeLessThan(150 * 4)
    expect(def.remoteStats()).toMatchObject({ failures: 1, timeouts: 1 })
  })

  const bad: [string, Handler, RegExp, Partial<RemoteAgentConfig>?][] = [
    ['garbage', (_b, res) => res.end('<html>oops</html>'), /not valid JSON/],
    ['no scores array', (_b, res) => json(res, 200, { score: [1, 2, 3] }), /no "scores" array/],
    ['wrong length', (_b, res) => json(res, 200, { scores: [1, 2] }), /2 entries for 3 posts/],
    ['bad entry', (_b, res) => json(res, 200, { scores: [1, 'yes', 3] }), /entry 1 is not a finite number/],
    ['non-finite entry', (_b, res) => res.end('{"scores":[1,1e999,3]}'), /entry 1 is not a finite number/],
    ['HTTP 500', (_b, res) => json(res, 500, { error: 'Boom', message: 'database down' }), /HTTP 500: Boom: database down/],
    ['HTTP 429', (_b, res) => json(res, 429, {}), /HTTP 429/],
    ['a redirect', (_b, res) => (res.writeHead(302, { location: 'http://169.254.169.254/' }), res.end()), /redirect \(HTTP 302\) refused/],
    [
      'oversized body (declared)',
      (b, res) => json(res, 200, { scores: b.posts.map(() => 1), pad: 'x'.repeat(4096) }),
      /exceeds the 1024-byte limit/,
      { maxResponseBytes: 1024 },
    ],
    [
      'oversized body (chunked)',
      (b, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write(`{"scores":${JSON.stringify(b.posts.map(() => 1))},"pad":"`)
        for (let i = 0; i < 8; i++) res.write('x'.repeat(512))
        res.end('"}')
      },
      /exceeds the 1024-byte limit/,
      { maxResponseBytes: 1024 },
    ],
  ]
  for (const [name, handler, why, extra] of bad) {
    it(`${name} → null and a counted failure`, async () => {
      const ts = await testServer({}, handler)
      const def = await load({ url: ts.url, ...extra })
      const out = await def.scoreBatchAsync(posts, ctx())
      expect(out).toEqual(nulls)
      expect(checkScores(out, posts.length)).toBeNull()
      const st = def.remoteStats()
      expect(st).toMatchObject({ requests: 1, failures: 1, timeouts: 0, open: false })
      expect(st.lastError).toMatch(why)
    })
  }

  it('only the failing chunk loses its opinion', async () => {
    let n = 0
    const ts = await testServer({}, (b, res) => (++n === 2 ? json(res, 500, {}) : okScores(b, res)))
    const def = await load({ url: ts.url, batchSize: 2 })
    // chunks are sent in parallel but arrive in order on this server; the second fails
    const out = await def.scoreBatchAsync([post(1), post(2), post(3), post(4), post(5)], ctx())
    expect(out.filter((s) => s === null)).toHaveLength(ts.bodies[1].posts.length)
    expect(out.filter((s) => s === 1)).toHaveLength(5 - ts.bodies[1].posts.length)
    expect(def.remoteStats().failures).toBe(1)
  })

  it('a caller abort gives null without counting against the agent', async () => {
    const ts = await testServer({}, () => {})
    const def = await load({ url: ts.url, deadlineMs: 2000 })
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 50)
    const t0 = performance.now()
    expect(await def.scoreBatchAsync(posts, ctx({}, ac.signal))).toEqual(nulls)
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(def.remoteStats()).toMatchObject({ failures: 0, timeouts: 0, consecutiveFailures: 0 })
  })
})

describe('remote agent: circuit breaker', () => {
  it('opens after N consecutive failures, stops sending, half-opens after the cooldown', async () => {
    let healthy = false
    const ts = await testServer({}, (b, res) => (healthy ? okScores(b, res) : json(res, 500, {})))
    const def = await load({ url: ts.url, breaker: { failures: 3, cooldownMs: 300 } })
    const one = [post(1)]

    for (let i = 0; i < 3; i++) expect(await def.scoreBatchAsync(one, ctx())).toEqual([null])
    expect(ts.hits.score).toBe(3)
    expect(def.remoteStats()).toMatchObject({ failures: 3, consecutiveFailures: 3, open: true, state: 'open' })

    // open: answered at once, nothing reaches the server
    healthy = true
    const t0 = performance.now()
    for (let i = 0; i < 5; i++) expect(await def.scoreBatchAsync(one, ctx())).toEqual([null])
    expect(performance.now() - t0).toBeLessThan(100)
    expect(ts.hits.score).toBe(3)
    expect(def.remoteStats()).toMatchObject({ skipped: 5, open: true })

    // after the cooldown: one trial; it succeeds, so the circuit closes
    await new Promise((r) => setTimeout(r, 350))
    expect(await def.scoreBatchAsync(one, ctx())).toEqual([1])
    expect(ts.hits.score).toBe(4)
    expect(def.remoteStats()).toMatchObject({ open: false, state: 'closed', consecutiveFailures: 0 })
    expect(await def.scoreBatchAsync(one, ctx())).toEqual([1])
    expect(ts.hits.score).toBe(5)
  })

  it('a failed trial reopens at once; only one trial runs at a time', async () => {
    let healthy = false
    const ts = await testServer({}, (b, res) => {
      if (!healthy) return json(res, 503, {})
      setTimeout(() => okScores(b, res), 100)
    })
    const def = await load({ url: ts.url, breaker: { failures: 2, cooldownMs: 200 } })
    const one = [post(1)]
    await def.scoreBatchAsync(one, ctx())
    await def.scoreBatchAsync(one, ctx())
    expect(def.remoteStats().open).toBe(true)
    expect(ts.hits.score).toBe(2)

    await new Promise((r) => setTimeout(r, 250))
    expect(await def.scoreBatchAsync(one, ctx())).toEqual([null]) // the trial, still failing
    expect(ts.hits.score).toBe(3)
    expect(def.remoteStats()).toMatchObject({ open: true, state: 'open' })
    expect(await def.scoreBatchAsync(one, ctx())).toEqual([null]) // reopened: no request
    expect(ts.hits.score).toBe(3)

    healthy = true
    await new Promise((r) => setTimeout(r, 250))
    const parallel = await Promise.all([1, 2, 3, 4].map(() => def.scoreBatchAsync(one, ctx())))
    expect(ts.hits.score).toBe(4) // one trial; the others got no opinion without a request
    expect(parallel.flat().filter((s: Score) => s === 1)).toHaveLength(1)
    expect(def.remoteStats()).toMatchObject({ state: 'closed' })
  })

  it('timeouts count towards opening the circuit', async () => {
    const ts = await testServer({}, () => {})
    const def = await load({ url: ts.url, deadlineMs: 50, breaker: { failures: 2, cooldownMs: 60_000 } })
    await def.scoreBatchAsync([post(1)], ctx())
    await def.scoreBatchAsync([post(1)], ctx())
    await def.scoreBatchAsync([post(1)], ctx())
    expect(ts.hits.score).toBe(2)
    expect(def.remoteStats()).toMatchObject({ timeouts: 2, open: true, skipped: 1 })
  })
})

describe('remote agent: SSRF guard', () => {
  it('refuses a loopback endpoint without allowPrivateNetwork, before connecting', async () => {
    const ts = await testServer()
    const err = await loadRemoteAgent({ url: ts.url, salt: 's' }).catch((e) => e)
    expect(err).toBeInstanceOf(SsrfError)
    expect(err.message).toMatch(/refusing to connect to 127\.0\.0\.1 .*loopback.*allowPrivateNetwork/)
    expect(ts.hits.meta).toBe(0)
  })

  it('refuses private, link-local and other non-public IP literals', async () => {
    const urls = [
      'http://10.0.0.1/',
      'http://172.16.5.4/',
      'http://192.168.1.1:8080/',
      'http://169.254.169.254/latest/meta-data',
      'http://100.64.0.1/',
      'http://0.0.0.0:80/',
      'http://224.0.0.1/',
      'http://255.255.255.255/',
      'http://[::1]/',
      'http://[::]/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[64:ff9b::a00:1]/',
      'http://[2002:7f00:1::]/',
      'http://2130706433/', // 127.0.0.1 in decimal: URL parsing normalises it
      'http://0x7f.1/',
    ]
    for (const url of urls) {
      const err = await loadRemoteAgent({ url, salt: 's' }).catch((e) => e)
      expect(err, url).toBeInstanceOf(SsrfError)
      expect(err.message, url).toMatch(/refusing to connect/)
    }
  })

  it('refuses a host name that resolves to loopback (localhost), with no request made', async () => {
    const ts = await testServer()
    const port = new URL(ts.url).port
    const err = await loadRemoteAgent({ url: `http://localhost:${port}`, salt: 's' }).catch((e) => e)
    expect(err).toBeInstanceOf(SsrfError)
    expect(err.message).toMatch(/refusing to connect to localhost \((127\.0\.0\.1|::1)\): loopback/)
    expect(ts.hits.meta).toBe(0)
  })

  it('refuses a name with any non-public address among its answers', async () => {
    const ts = await testServer()
    const port = new URL(ts.url).port
    const resolve = async () => [
      { address: '8.8.8.8', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ]
    const err = await loadRemoteAgent({ url: `http://agent.example.test:${port}`, salt: 's', resolve }).catch((e) => e)
    expect(err).toBeInstanceOf(SsrfError)
    expect(err.message).toMatch(/agent\.example\.test \(127\.0\.0\.1\)/)
    expect(ts.hits.meta).toBe(0)
  })

  it('connects to the address the guard checked (pinned), not a fresh lookup', async () => {
    const ts = await testServer()
    const port = new URL(ts.url).port
    const looked: string[] = []
    const resolve = async (h: string) => {
      looked.push(h)
      return [{ address: '127.0.0.1', family: 4 }]
    }
    // a name the system resolver cannot know: the connection can only work through the checked answer
    const def = await load({ url: `http://agent.skysift.invalid:${port}`, resolve })
    expect(await def.scoreBatchAsync([post(1)], ctx())).toEqual([1])
    expect(looked.every((h) => h === 'agent.skysift.invalid')).toBe(true)
    expect(looked.length).toBeGreaterThan(0)
  })

  it('refuses non-http schemes', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://example.com/agent', 'data:text/plain,hi', 'ws://example.com/']) {
      const err = await loadRemoteAgent({ url, salt: 's' }).catch((e) => e)
      expect(err, url).toBeInstanceOf(SsrfError)
      expect(err.message, url).toMatch(/must use http: or https:/)
    }
  })

  it('refuses at scoring time when DNS changes to a private address (injected fetch)', async () => {
    // no traffic at all: the fetch is in-memory, and the guard's check runs before it
    let lookups = 0
    const resolve = async () => (++lookups === 1 ? [{ address: '8.8.8.8', family: 4 }] : [{ address: '127.0.0.1', family: 4 }])
    const calls: string[] = []
    const fakeFetch = (async (input: string | URL | Request) => {
      const url = String(input instanceof Request ? input.url : input)
      calls.push(url)
      if (url.endsWith('/meta'))
        return Response.json({ id: 'rebinder', version: '1', title: 'R', description: '', api: 1, options: { type: 'object' }, needs: ['text'] })
      return Response.json({ scores: [1] })
    }) as typeof fetch
    const def = await loadRemoteAgent({ url: 'https://rebind.example.test', salt: 's', resolve }, fakeFetch)
    defs.push(def)
    expect(def.id).toBe('rebinder')
    expect(await def.scoreBatchAsync([post(1)], ctx())).toEqual([null])
    expect(calls).toEqual(['https://rebind.example.test/meta'])
    expect(def.remoteStats()).toMatchObject({ requests: 1, failures: 1 })
    expect(def.remoteStats().lastError).toMatch(/refusing to connect to rebind\.example\.test \(127\.0\.0\.1\): loopback/)
  })

  it('classifies addresses', () => {
    const blocked = [
      '127.0.0.1',
      '10.1.2.3',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '100.127.0.1',
      '0.1.2.3',
      '239.1.1.1',
      '::1',
      '::',
      'fc00::1',
      'fdff::1',
      'fe80::1%eth0',
      '::ffff:10.0.0.1',
      '::ffff:7f00:1',
      'ff02::1',
      '2001:db8::1',
      'not-an-ip',
    ]
    const allowed = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2a00:1450:4001::200e']
    for (const a of blocked) expect(nonPublicReason(a), a).not.toBeNull()
    for (const a of allowed) expect(nonPublicReason(a), a).toBeNull()
  })
})

describe('remote agent: /meta validation', () => {
  it('refuses an agent that targets another API version, naming both', async () => {
    const ts = await testServer({ api: 2 })
    await expect(load({ url: ts.url })).rejects.toThrow(/agent test-agent targets SDK API 2; this host speaks 1/)
  })

  const invalid: [Record<string, unknown>, RegExp][] = [
    [{ id: 'Bad_Id' }, /invalid \/meta: id:/],
    [{ id: 'x' }, /invalid \/meta: id:/],
    [{ needs: ['text', 'dms'] }, /invalid \/meta: needs\.1/],
    [{ title: '' }, /invalid \/meta: title/],
    [{ api: '1' }, /invalid \/meta: api/],
    [{ prefilter: { langs: ['en'], evil: true } }, /invalid \/meta: prefilter/],
    [{ options: { type: 'string' } }, /options schema must have "type": "object"/],
    [{ options: { type: 'object', properties: { q: { type: 'string', pattern: '^(a+)+$' } } } }, /regular expressions are not allowed/],
    [{ options: { type: 'object', properties: { x: { $ref: 'https://evil.example/schema' } } } }, /invalid \/meta: options: .*ref/i],
  ]
  for (const [meta, why] of invalid) {
    it(`refuses ${JSON.stringify(meta)}`, async () => {
      const ts = await testServer(meta)
      await expect(load({ url: ts.url })).rejects.toThrow(why)
    })
  }

  it('accepts a property named "pattern", a prefilter and duplicate needs', async () => {
    const ts = await testServer({
      options: { type: 'object', properties: { pattern: { type: 'string', default: 'x' } }, additionalProperties: false },
      needs: ['text', 'text', 'langs'],
      prefilter: { langs: ['en'], replies: 'exclude' },
    })
    const def = await load({ url: ts.url })
    expect(def.needs).toEqual(['text', 'langs'])
    expect(def.prefilter).toEqual({ langs: ['en'], replies: 'exclude' })
    expect(def.options.parse({})).toEqual({ pattern: 'x' })
    expect(def.options.safeParse({ other: 1 }).success).toBe(false)
  })

  it('reports an unreachable endpoint and an HTTP error on /meta', async () => {
    const ts = await testServer()
    await ts.close()
    await expect(load({ url: ts.url })).rejects.toThrow(/GET \/meta failed: .*ECONNREFUSED/)
    const ts2 = await testServer()
    await expect(load({ url: `${ts2.url}/nope` })).rejects.toThrow(/GET \/meta answered HTTP 404: NotFound/)
  })
})

/**
 * Hostile HTTP requests and what a correct server answers to each: forged,
 * expired, wrong-audience, wrong-method and garbage tokens; bad cursors;
 * out-of-range and repeated parameters; oversized bodies; unknown methods;
 * path traversal. Sent with node:http so paths reach the server unnormalized.
 */
import http from 'node:http'
import { Secp256k1Keypair } from '@atproto/crypto'
import { createServiceJwt } from '@atproto/xrpc-server'
import type { TestUser } from '../../support/identity.ts'
import { rng } from './rng.ts'

export interface Expect {
  status: number[]
  /** 200 with exactly the anonymous reader's page for this feed */
  anonymous?: string
  /** 200 with an empty feed */
  empty?: boolean
  /** XRPC error names allowed */
  errors?: string[]
  /** the body must not contain any of these */
  noLeak?: boolean
}

export interface HostileRequest {
  kind: string
  method: string
  path: string
  headers?: Record<string, string>
  body?: Buffer
  /** send the body without content-length */
  chunked?: boolean
  expect: Expect
}

export interface Response {
  status: number
  body: Buffer
}

const LEAKS = ['root:x:0:0', '"devDependencies"', 'export function', 'BEGIN PRIVATE KEY', 'better-sqlite3']

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

export interface HostileSetup {
  serviceDid: string
  feeds: string[]
  alice: TestUser
  bob: TestUser
}

/** Builds the token pools (signing is async) and returns a generator of requests. */
export async function hostileRequests(s: HostileSetup, seed: number): Promise<() => HostileRequest> {
  const r = rng(seed)
  const SK = 'app.bsky.feed.getFeedSkeleton'
  const now = Math.floor(Date.now() / 1000)
  const stranger = await Secp256k1Keypair.create()
  const pool = async (n: number, f: (i: number) => Promise<string>) => Promise.all(Array.from({ length: n }, (_, i) => f(i)))
  const badFor = async (lxm: string) => ({
    forged: await pool(5, () => s.alice.token(s.serviceDid, lxm, { keypair: stranger })),
    expired: await pool(5, (i) => s.alice.token(s.serviceDid, lxm, { exp: now - 10 - i * 1000 })),
    wrongAudience: await pool(5, (i) =>
      s.alice.token(r.pick(['did:web:elsewhere.example', `${s.serviceDid}x`, 'did:plc:someoneelse0000000000000', `did:web:feeds${i}.test`]), lxm),
    ),
    wrongLxm: await pool(5, () =>
      s.alice.token(
        s.serviceDid,
        r.pick(
          ['app.skysift.feed.putMix', 'app.bsky.feed.getFeedSkeleton', 'com.atproto.repo.createRecord', 'app.bsky.feed.getTimeline', '*'].filter(
            (x) => x !== lxm,
          ),
        ),
      ),
    ),
    unresolvable: await pool(5, (i) =>
      createServiceJwt({ iss: i % 2 ? 'did:web:localhost%3A9' : `did:plc:${'q'.repeat(24)}`, aud: s.serviceDid, lxm, keypair: stranger }),
    ),
  })
  const skeletonBad = await badFor(SK)
  const getMixBad = await badFor('app.skysift.feed.getMix')
  const putMixBad = await badFor('app.skysift.feed.putMix')
  const bobPut = await pool(10, () => s.bob.token(s.serviceDid, 'app.skysift.feed.putMix'))
  const garbage = (): Record<string, string> =>
    r.pick([
      { authorization: 'Bearer not-a-jwt' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer a.b.c' },
      { authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: s.alice.did, aud: s.serviceDid, lxm: SK, exp: now + 600 })}.` },
      {
        authorization: `Bearer ${b64({ alg: 'ES256K', typ: 'JWT' })}.${b64({ iss: s.alice.did, aud: s.serviceDid, lxm: SK, exp: now + 600 })}.${'A'.repeat(86)}`,
      },
      { authorization: 'Basic dXNlcjpwYXNzd29yZA==' },
      { authorization: `Bearer ${'x'.repeat(6000)}` },
      { authorization: 'Bearer \u0000\u0001'.replace(/[\u0000-\u001f]/g, '%') },
      { authorization: `Bearer ${b64({ alg: 'ES256K' })}.${b64({ iss: 42, aud: [s.serviceDid], exp: 'soon' })}.sig` },
    ])
  const tokenKinds = { ...skeletonBad }
  const feed = () => r.pick(s.feeds)
  const q = (o: Record<string, string | string[]>) =>
    Object.entries(o)
      .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`))
      .join('&')
  const skel = (params: string) => `/xrpc/${SK}?${params}`
  const json = (o: unknown) => Buffer.from(JSON.stringify(o))
  const big = (n: number) => Buffer.from(JSON.stringify({ feed: s.feeds[0], agents: [{ agent: 'keyword', weight: 1, options: { include: ['x'.repeat(n)] } }] }))
  const deepJson = (n: number) =>
    Buffer.from(`{"feed":${JSON.stringify(s.feeds[0])},"agents":[{"agent":"keyword","weight":1,"options":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}]}`)
  const bad400 = { status: [400], errors: ['InvalidRequest', 'UnknownFeed'] }
  const authErr = {
    status: [401],
    errors: [
      'AuthRequired',
      'BadJwtSignature',
      'JwtExpired',
      'BadJwtAudience',
      'BadJwtLexiconMethod',
      'BadJwt',
      'BadAuthorization',
      'InvalidToken',
      'AuthMissing',
    ],
  }
  const tooLarge = { status: [413], errors: ['PayloadTooLarge'] }
  const notFound = { status: [404], errors: ['MethodNotImplemented'] }

  const gens: [number, () => HostileRequest][] = [
    // -- bad tokens on getFeedSkeleton: served as anonymous ---------------------
    ...Object.entries(tokenKinds).map(([k, toks]): [number, () => HostileRequest] => [
      8,
      () => {
        const f = feed()
        return {
          kind: `skeleton, ${k} token`,
          method: 'GET',
          path: skel(q({ feed: f, limit: '30' })),
          headers: { authorization: `Bearer ${r.pick(toks)}` },
          expect: { status: [200], anonymous: f },
        }
      },
    ]),
    [
      8,
      () => {
        const f = feed()
        return {
          kind: 'skeleton, garbage token',
          method: 'GET',
          path: skel(q({ feed: f, limit: '30' })),
          headers: garbage(),
          expect: { status: [200], anonymous: f },
        }
      },
    ],
    [
      2,
      () => {
        const f = feed()
        return {
          kind: 'skeleton, many unknown params',
          method: 'GET',
          path: skel(`${q({ feed: f, limit: '30' })}&${Array.from({ length: 500 }, (_, i) => `p${i}=${i}`).join('&')}`),
          expect: { status: [200], anonymous: f },
        }
      },
    ],
    // -- bad parameters ------------------------------------------------------------
    [
      6,
      () => ({
        kind: 'skeleton, limit out of range',
        method: 'GET',
        path: skel(q({ feed: feed(), limit: r.pick(['0', '101', '-1', 'abc', '1e2', '', '99999', '1.5', ' 5', '0x10', '१०']) })),
        expect: bad400,
      }),
    ],
    [
      4,
      () => ({
        kind: 'skeleton, repeated params',
        method: 'GET',
        path: skel(r.pick([q({ feed: [feed(), feed()] }), q({ feed: feed(), limit: ['5', '6'] }), q({ feed: feed(), cursor: ['1.1', '1.2'] })])),
        expect: bad400,
      }),
    ],
    [
      5,
      () => ({
        kind: 'skeleton, bad feed',
        method: 'GET',
        path: r.pick([
          skel(''),
          skel(q({ feed: 'not-a-uri' })),
          skel(q({ feed: 'at://did:plc:abc/app.bsky.feed.generator/nope' })),
          skel(q({ feed: 'at://did:plc:abc/app.bsky.feed.post/fresh' })),
          skel(q({ feed: `at://${'d'.repeat(5000)}` })),
          skel('feed=%E0%A4%A'),
          skel('feed=%'),
          skel('feed=at%3A%2F%2F%00'),
        ]),
        expect: bad400,
      }),
    ],
    [
      6,
      () => ({
        kind: 'skeleton, malformed cursor',
        method: 'GET',
        path: skel(
          q({ feed: feed(), cursor: r.pick(['garbage!', '0.1', 'zzzzzzzzzzz.1', '1.', '.1', 'c'.repeat(300), '-1.5', '1.1.1', '<script>', '%00', 'NaN.NaN']) }),
        ),
        expect: bad400,
      }),
    ],
    [
      3,
      () => ({
        kind: 'skeleton, cursor of no snapshot',
        method: 'GET',
        path: skel(q({ feed: feed(), cursor: r.pick(['zzz.1', 'zzzzzzzz.0', '1zzzzzzz.zzzzzzz']).concat(`.${'A'.repeat(22)}`) })),
        expect: { status: [200], empty: true },
      }),
    ],
    // -- private methods with bad tokens ---------------------------------------------
    [
      6,
      () => {
        const kind = r.pick(Object.keys(getMixBad) as (keyof typeof getMixBad)[])
        return {
          kind: `getMix, ${kind} token`,
          method: 'GET',
          path: `/xrpc/app.skysift.feed.getMix?${q({ feed: feed() })}`,
          headers: { authorization: `Bearer ${r.pick(getMixBad[kind])}` },
          expect: authErr,
        }
      },
    ],
    [
      6,
      () => {
        const kind = r.pick(Object.keys(putMixBad) as (keyof typeof putMixBad)[])
        return {
          kind: `putMix, ${kind} token`,
          method: 'POST',
          path: '/xrpc/app.skysift.feed.putMix',
          headers: { authorization: `Bearer ${r.pick(putMixBad[kind])}`, 'content-type': 'application/json' },
          body: json({ feed: feed(), agents: [{ agent: 'recency', weight: 5 }] }),
          expect: authErr,
        }
      },
    ],
    [
      4,
      () => ({
        kind: 'private method, garbage or no token',
        method: r.pick(['GET', 'POST']) === 'GET' ? 'GET' : 'POST',
        path: '',
        headers: r.next() < 0.5 ? garbage() : {},
        expect: authErr,
      }),
    ],
    // -- bad bodies with a valid token --------------------------------------------------
    [
      6,
      () => ({
        kind: 'putMix, bad body',
        method: 'POST',
        path: '/xrpc/app.skysift.feed.putMix',
        headers: { authorization: `Bearer ${r.pick(bobPut)}`, 'content-type': 'application/json' },
        body: r.pick([
          Buffer.from('not json'),
          Buffer.from('{"feed":'),
          json({ feed: 42 }),
          json({ feed: s.feeds[0], agents: 'recency' }),
          json({ feed: s.feeds[0], agents: [{ agent: 'recency', weight: 1e308 }] }),
          json({ feed: s.feeds[0], agents: [{ agent: 'nope', weight: 1 }] }),
          json({ feed: s.feeds[0], agents: [{ agent: 'keyword', weight: 1, options: { include: 42 } }] }),
          json({ feed: 'at://did:plc:x/app.bsky.feed.generator/nope', agents: [] }),
          json([]),
          Buffer.from([0xff, 0xfe, 0x00]),
          // 10,000 levels of nesting in the options (60 KB, under the 64 KiB limit)
          deepJson(10_000),
        ]),
        expect: { status: [400], errors: ['InvalidRequest', 'InvalidMix', 'UnknownFeed'] },
      }),
    ],
    [
      2,
      () => ({
        kind: 'previewMix without token, deeply nested options',
        method: 'POST',
        path: '/xrpc/app.skysift.feed.previewMix',
        headers: { 'content-type': 'application/json' },
        body: deepJson(10_000),
        expect: { status: [400], errors: ['InvalidRequest', 'InvalidMix'] },
      }),
    ],
    [
      3,
      () => ({
        kind: 'explainItem, bad context',
        method: 'GET',
        path: `/xrpc/app.skysift.feed.explainItem?${r.pick(['', q({ feedContext: 'garbage' }), q({ feedContext: 'v1|'.repeat(3000) }), q({ feedContext: ['a', 'b'] })])}`,
        expect: { status: [400], errors: ['InvalidRequest', 'UnknownContext'] },
      }),
    ],
    // -- oversized bodies ------------------------------------------------------------------
    [
      6,
      () => {
        const [path, size] = r.pick([
          ['/xrpc/app.skysift.feed.putMix', 70_000],
          ['/xrpc/app.skysift.feed.previewMix', 70_000],
          ['/xrpc/app.skysift.feed.deleteMix', 70_000],
          ['/xrpc/app.skysift.feed.undoFeedback', 70_000],
          ['/xrpc/app.bsky.feed.sendInteractions', 300_000],
          ['/xrpc/app.skysift.agent.submitAgent', 320_000],
        ] as const)
        const tok = r.next() < 0.5 ? { authorization: `Bearer ${r.pick(bobPut)}` } : {}
        return {
          kind: 'oversized body',
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', ...tok },
          body: big(size),
          chunked: r.next() < 0.5,
          expect: tooLarge,
        }
      },
    ],
    // -- unknown methods ---------------------------------------------------------------------
    [
      5,
      () => ({
        kind: 'unknown XRPC method',
        method: 'GET',
        path: r.pick([
          '/xrpc/app.bsky.feed.getNothing',
          '/xrpc/',
          '/xrpc/com.atproto.sync.subscribeRepos',
          `/xrpc/${SK}.extra`,
          '/xrpc/app.skysift.feed.putMix',
          `/xrpc/${'a.'.repeat(500)}b`,
        ]),
        expect: notFound,
      }),
    ],
    [
      4,
      () => ({
        kind: 'wrong HTTP method',
        method: r.pick(['POST', 'PUT', 'DELETE', 'PATCH']),
        path: skel(q({ feed: feed() })),
        body: Buffer.from('{}'),
        headers: { 'content-type': 'application/json' },
        expect: notFound,
      }),
    ],
    // -- path traversal -------------------------------------------------------------------------
    [
      5,
      () => ({
        kind: 'path traversal',
        method: 'GET',
        path: r.pick([
          '/xrpc/../../../../etc/passwd',
          '/../../etc/passwd',
          '/%2e%2e/%2e%2e/etc/passwd',
          '/static/../../package.json',
          '/static/..%2f..%2fpackage.json',
          '/static/%2e%2e%2f%2e%2e%2fsrc%2fconfig.ts',
          '/xrpc/..%2f..%2fpackage.json',
          '//etc/passwd',
          '/static/skysift.css/../../../package.json',
          '/.well-known/../package.json',
          '/admin/../../etc/passwd',
          '/..%5c..%5cpackage.json',
          '/static/..\\..\\package.json',
        ]),
        expect: { status: [400, 404], noLeak: true },
      }),
    ],
  ]
  const PRIVATE: [string, string, Buffer | undefined][] = [
    ['GET', `/xrpc/app.skysift.feed.getMix?${q({ feed: s.feeds[0] })}`, undefined],
    ['GET', '/xrpc/app.skysift.feed.listMixes', undefined],
    ['GET', `/xrpc/app.skysift.feed.listFeedback?${q({ feed: s.feeds[0] })}`, undefined],
    ['POST', '/xrpc/app.skysift.feed.putMix', json({ feed: s.feeds[0], agents: [] })],
    ['POST', '/xrpc/app.skysift.feed.deleteMix', json({ feed: s.feeds[0] })],
    ['POST', '/xrpc/app.skysift.feed.undoFeedback', json({ id: 1 })],
    ['POST', '/xrpc/app.bsky.feed.sendInteractions', json({ interactions: [] })],
    ['POST', '/xrpc/app.skysift.agent.submitAgent', json({ source: 'export default {}' })],
  ]
  const total = gens.reduce((n, [w]) => n + w, 0)
  let i = 0
  return () => {
    // every kind once first, then weighted
    let g = gens[i++]?.[1]
    if (!g) {
      let x = r.next() * total
      for (const [w, gen] of gens) {
        x -= w
        if (x < 0) {
          g = gen
          break
        }
      }
      g ??= gens[0][1]
    }
    const req = g()
    if (req.kind === 'private method, garbage or no token') {
      const [method, path, body] = r.pick(PRIVATE)
      return { ...req, method, path, body, headers: { ...req.headers, ...(body ? { 'content-type': 'application/json' } : {}) } }
    }
    return req
  }
}

/** Sends one request as given (path unnormalized). */
export function send(base: string, req: HostileRequest, timeoutMs = 30_000): Promise<Response> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...req.headers }
    if (req.body && !req.chunked) headers['content-length'] = req.body.length
    // a connection per request: a server that closes a connection after a 413 must not fail the next request
    const h = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    h.on('timeout', () => h.destroy(new Error('timeout')))
    h.on('error', (err) => {
      // the server may answer 413 and close before the whole body is sent
      reject(err)
    })
    if (req.body) {
      if (req.chunked) {
        for (let i = 0; i < req.body.length; i += 16_384) h.write(req.body.subarray(i, i + 16_384))
      } else h.write(req.body)
    }
    h.end()
  })
}

/** What is wrong with a response, or null. `anon` holds the anonymous page (post uris and fingerprint) per feed. */
export function judge(req: HostileRequest, res: Response, anon: Map<string, { posts: string[]; fingerprint: string | undefined }>): string | null {
  if (res.status >= 500) return `${res.status} (server error)`
  if (!req.expect.status.includes(res.status))
    return `status ${res.status}, expected ${req.expect.status.join('/')}: ${res.body.toString('utf8').slice(0, 200)}`
  const text = res.body.toString('utf8')
  if (req.expect.noLeak && LEAKS.some((l) => text.includes(l))) return 'leaked a file'
  let body: any
  if (req.path.startsWith('/xrpc/') || res.status === 413) {
    try {
      body = JSON.parse(text)
    } catch {
      return `not JSON: ${text.slice(0, 100)}`
    }
  }
  if (res.status >= 400 && body !== undefined) {
    if (typeof body?.error !== 'string' || typeof body?.message !== 'string') return `error body not {error, message}: ${text.slice(0, 200)}`
    if (req.expect.errors && !req.expect.errors.includes(body.error)) return `error ${body.error}, expected ${req.expect.errors.join('/')}: ${body.message}`
  }
  if (req.expect.anonymous) {
    const want = anon.get(req.expect.anonymous)!
    const posts = (body?.feed ?? []).map((x: { post: string }) => x.post)
    const fp = body?.feed?.[0]?.feedContext?.split('|')[1]
    if (JSON.stringify(posts) !== JSON.stringify(want.posts) || fp !== want.fingerprint)
      return `not the anonymous page (fingerprint ${fp}, want ${want.fingerprint})`
  }
  if (req.expect.empty && (body?.feed?.length !== 0 || body?.cursor !== undefined)) return `expected an empty page: ${text.slice(0, 200)}`
  return null
}

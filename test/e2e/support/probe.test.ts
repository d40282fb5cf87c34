/**
 * Probe for the e2e harness: proves that a did:web feed generator served by a
 * tiny Hono app on localhost is reachable through the local PDS + AppView, and
 * records what auth the AppView / PDS send to it.
 *
 * Run: npx vitest run test/e2e/support/probe.test.ts
 */
import { existsSync } from 'node:fs'

import { IdResolver } from '@atproto/identity'
import { verifyJwt } from '@atproto/xrpc-server'
import { Hono } from 'hono'
import pg from 'pg'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  type LocalHttpServer,
  type LocalNetwork,
  type LocalUser,
  decodeJwtPayload,
  feedGenDidDoc,
  listenLocal,
  startLocalNetwork,
} from './network.ts'

interface Seen {
  path: string
  method: string
  query: Record<string, string>
  authorization: string | null
  headers: Record<string, string>
  body?: string
}

const log = (label: string, value: unknown) =>
  console.log(`[probe] ${label}: ${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}`)

const mb = (n: number) => Math.round(n / 1024 / 1024)

describe('local network harness probe', () => {
  let net: LocalNetwork
  let fg: LocalHttpServer
  let alice: LocalUser
  let bob: LocalUser
  let feedUri: string
  let badFeedUri: string
  const seen: Seen[] = []
  let skeletonUris: string[] = []
  const timings: Record<string, number> = {}

  const lastSeen = (path: string) => [...seen].reverse().find((s) => s.path === path)

  beforeAll(async () => {
    const rss0 = process.memoryUsage().rss
    const t0 = performance.now()
    net = await startLocalNetwork()
    timings.startLocalNetworkMs = Math.round(performance.now() - t0)
    timings.testNetworkCreateMs = Math.round(net.bootMs)
    const m = process.memoryUsage()
    log('memory after boot (MB)', {
      rssBefore: mb(rss0),
      rss: mb(m.rss),
      heapUsed: mb(m.heapUsed),
      external: mb(m.external),
    })
    log('urls', {
      pds: net.pdsUrl,
      firehose: net.pdsWsUrl,
      plc: net.plcUrl,
      appview: net.appviewUrl,
      appviewDid: net.appviewDid,
      ozone: net.ozoneUrl,
      schema: net.schema,
      tmpDir: net.tmpDir,
    })

    const app = new Hono()
    app.use('*', async (c, next) => {
      const headers: Record<string, string> = {}
      c.req.raw.headers.forEach((v, k) => (headers[k] = v))
      seen.push({
        path: c.req.path,
        method: c.req.method,
        query: c.req.query(),
        authorization: c.req.header('authorization') ?? null,
        headers,
        body: c.req.method === 'POST' ? await c.req.raw.clone().text() : undefined,
      })
      await next()
    })
    app.get('/.well-known/did.json', (c) => c.json(feedGenDidDoc(fg.did, fg.url)))
    app.get('/xrpc/app.bsky.feed.describeFeedGenerator', (c) =>
      c.json({ did: fg.did, feeds: feedUri ? [{ uri: feedUri }] : [] }),
    )
    app.get('/xrpc/app.bsky.feed.getFeedSkeleton', (c) => {
      const feed = c.req.query('feed')
      if (feed !== feedUri) {
        return c.json({ error: 'UnknownFeed', message: `unknown feed ${feed}` }, 400)
      }
      return c.json({ feed: skeletonUris.map((post) => ({ post })), cursor: 'page-2' })
    })
    app.get('/xrpc/app.skysift.feed.getMix', (c) => c.json({ ok: true, q: c.req.query() }))
    app.post('/xrpc/app.skysift.feed.setMix', async (c) => c.json({ ok: true, got: await c.req.json() }))
    fg = await listenLocal(app.fetch)
    log('feed generator', { url: fg.url, did: fg.did })
  }, 120_000)

  afterAll(async () => {
    const t0 = performance.now()
    await fg?.close()
    await net?.close()
    timings.closeMs = Math.round(performance.now() - t0)
    log('timings', timings)
    if (net) {
      // cleanup really happened
      const c = new pg.Client({ connectionString: net.postgresUrl })
      await c.connect()
      const { rows } = await c.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [
        `%${net.schema}`,
      ])
      await c.end()
      log('schemas left after close', rows)
      log('tmpDir exists after close', existsSync(net.tmpDir))
      const res = process
        .getActiveResourcesInfo()
        .reduce<Record<string, number>>((a, r) => ((a[r] = (a[r] ?? 0) + 1), a), {})
      log('active resources after close', res)
      expect(rows).toEqual([])
      expect(existsSync(net.tmpDir)).toBe(false)
    }
  }, 60_000)

  it('creates users and posts, publishes the feed record', async () => {
    const t0 = performance.now()
    alice = await net.createUser('alice')
    bob = await net.createUser('bob')
    timings.createTwoUsersMs = Math.round(performance.now() - t0)
    expect(alice.did).toMatch(/^did:plc:/)
    expect(alice.handle).toBe('alice.test')

    const uris: string[] = []
    for (const text of ['first', 'second', 'third']) {
      const r = await alice.agent.post({ text: `alice ${text}`, createdAt: new Date().toISOString() })
      uris.push(r.uri)
    }
    const r = await bob.agent.post({ text: 'bob hello', createdAt: new Date().toISOString() })
    uris.push(r.uri)
    // deliberately not chronological: [bob, alice#1, alice#3, alice#2]
    skeletonUris = [uris[3]!, uris[0]!, uris[2]!, uris[1]!]

    const t1 = performance.now()
    feedUri = await net.publishFeed(alice, 'mix', fg.did, 'Skysift probe')
    badFeedUri = await net.publishFeed(alice, 'nope', fg.did, 'Unknown to the generator')
    timings.publishTwoFeedsMs = Math.round(performance.now() - t1)
    expect(feedUri).toBe(`at://${alice.did}/app.bsky.feed.generator/mix`)
  }, 60_000)

  it('getFeed through PDS -> AppView -> did:web feed generator, skeleton order kept', async () => {
    const agent = net.appviewAgentFor(bob) // via PDS (production path)
    const t0 = performance.now()
    const res = await agent.app.bsky.feed.getFeed({ feed: feedUri, limit: 10 })
    timings.getFeedViaPdsMs = Math.round(performance.now() - t0)
    const got = res.data.feed.map((i) => i.post.uri)
    log('getFeed (via PDS) post uris', got)
    log('getFeed cursor', res.data.cursor)
    expect(got).toEqual(skeletonUris)
    expect(res.data.feed[0]!.post.author.handle).toBe('bob.test')
    expect((res.data.feed[1]!.post.record as { text: string }).text).toBe('alice first')
    expect(res.data.cursor).toBe('page-2')

    const s = lastSeen('/xrpc/app.bsky.feed.getFeedSkeleton')!
    log('getFeedSkeleton request from AppView (via PDS)', {
      query: s.query,
      headers: { ...s.headers, authorization: s.authorization ? '<jwt>' : null },
    })
    expect(s.authorization).toMatch(/^Bearer /)
    const jwt = s.authorization!.slice('Bearer '.length)
    const header = JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString())
    const payload = decodeJwtPayload(jwt)
    log('JWT header', header)
    log('JWT payload (via PDS)', { ...payload, ttlSeconds: (payload.exp as number) - Date.now() / 1000 })
    expect(payload.iss).toBe(bob.did)
    expect(payload.aud).toBe(fg.did)
    expect(payload.lxm).toBe('app.bsky.feed.getFeedSkeleton')

    // our server can verify it: resolver MUST be given a non-SSRF-protected fetch
    const resolver = new IdResolver({ plcUrl: net.plcUrl, fetch: globalThis.fetch })
    const verified = await verifyJwt(jwt, fg.did, 'app.bsky.feed.getFeedSkeleton', (iss, force) =>
      resolver.did.resolveAtprotoKey(iss, force),
    )
    expect(verified.iss).toBe(bob.did)
  }, 60_000)

  it('getFeed directly on the AppView with a service JWT, and anonymously', async () => {
    const direct = net.appviewAgentFor(bob, { via: 'direct' })
    const res = await direct.app.bsky.feed.getFeed({ feed: feedUri })
    expect(res.data.feed.map((i) => i.post.uri)).toEqual(skeletonUris)
    const s = lastSeen('/xrpc/app.bsky.feed.getFeedSkeleton')!
    const payload = decodeJwtPayload(s.authorization!)
    log('JWT payload (direct AppView call, passed through verbatim)', payload)
    expect(payload.iss).toBe(bob.did)
    expect(payload.aud).toBe(net.appviewDid)
    expect(payload.lxm).toBe('app.bsky.feed.getFeed')

    const anon = net.appviewAgentFor(null)
    const before = seen.length
    const res2 = await anon.app.bsky.feed.getFeed({ feed: feedUri })
    expect(res2.data.feed.map((i) => i.post.uri)).toEqual(skeletonUris)
    const s2 = seen.slice(before).find((x) => x.path === '/xrpc/app.bsky.feed.getFeedSkeleton')!
    log('anonymous getFeed: authorization sent to feed generator', s2.authorization)
    expect(s2.authorization).toBeNull()
  }, 60_000)

  it('feed generator errors are passed through to the client', async () => {
    const agent = net.appviewAgentFor(bob)
    const err = await agent.app.bsky.feed.getFeed({ feed: badFeedUri }).then(
      () => null,
      (e: unknown) => e as { status?: number; error?: string; message?: string },
    )
    log('error for feed the generator rejects', { status: err?.status, error: err?.error, message: err?.message })
    expect(err?.status).toBe(400)
    expect(err?.error).toBe('UnknownFeed')
  }, 60_000)

  it('getFeedGenerator reports the generator online/valid', async () => {
    const agent = net.appviewAgentFor(bob)
    const res = await agent.app.bsky.feed.getFeedGenerator({ feed: feedUri })
    log('getFeedGenerator', {
      isOnline: res.data.isOnline,
      isValid: res.data.isValid,
      did: res.data.view.did,
      displayName: res.data.view.displayName,
    })
    expect(res.data.view.did).toBe(fg.did)
  }, 60_000)

  it('getServiceAuth mints user tokens for our service', async () => {
    const lxm = 'app.skysift.feed.getMix'
    const token = await net.getServiceAuth(bob, fg.did, lxm)
    const p = decodeJwtPayload(token)
    log('getServiceAuth({aud, lxm}) payload', { ...p, ttlSeconds: Math.round((p.exp as number) - Date.now() / 1000) })
    expect(p).toMatchObject({ iss: bob.did, aud: fg.did, lxm })

    const withFragment = decodeJwtPayload(await net.getServiceAuth(bob, `${fg.did}#bsky_fg`, lxm))
    log('getServiceAuth aud with #fragment -> aud', withFragment.aud)

    const long = decodeJwtPayload(await net.getServiceAuth(bob, fg.did, lxm, 3000))
    log('getServiceAuth exp=+3000s ttl', Math.round((long.exp as number) - Date.now() / 1000))

    const noLxm = decodeJwtPayload(await net.getServiceAuth(bob, fg.did, null))
    log('getServiceAuth without lxm payload', noLxm)

    const tooLong = await net.getServiceAuth(bob, fg.did, null, 120).then(
      () => 'ok',
      (e: Error) => e.message,
    )
    log('getServiceAuth without lxm, exp=+120s', tooLong)
    const tooLong2 = await net.getServiceAuth(bob, fg.did, lxm, 7200).then(
      () => 'ok',
      (e: Error) => e.message,
    )
    log('getServiceAuth with lxm, exp=+7200s', tooLong2)

    const resolver = new IdResolver({ plcUrl: net.plcUrl, fetch: globalThis.fetch })
    const v = await verifyJwt(token, fg.did, lxm, (iss, f) => resolver.did.resolveAtprotoKey(iss, f))
    expect(v.iss).toBe(bob.did)

    // our server calling the service with it directly
    const r = await fetch(`${fg.url}/xrpc/${lxm}?x=1`, { headers: { authorization: `Bearer ${token}` } })
    expect(r.status).toBe(200)
  }, 60_000)

  it('PDS proxies custom NSIDs to the did:web service (atproto-proxy header)', async () => {
    const before = seen.length
    const proxy = `${fg.did}#bsky_fg`
    const h = { 'atproto-proxy': proxy }
    // sessionManager.fetchHandler adds the user's access token and resolves against the PDS
    const getRes = await bob.agent.sessionManager.fetchHandler('/xrpc/app.skysift.feed.getMix?n=3', {
      method: 'GET',
      headers: h,
    })
    const getBody = await getRes.json()
    log('proxied GET status/body', { status: getRes.status, body: getBody })
    expect(getRes.status).toBe(200)

    const postRes = await bob.agent.sessionManager.fetchHandler('/xrpc/app.skysift.feed.setMix', {
      method: 'POST',
      headers: { ...h, 'content-type': 'application/json' },
      body: JSON.stringify({ weights: { a: 1 } }),
    })
    const postBody = await postRes.json()
    log('proxied POST status/body', { status: postRes.status, body: postBody })
    expect(postRes.status).toBe(200)

    const hits = seen.slice(before).filter((s) => s.path.startsWith('/xrpc/app.skysift'))
    for (const hit of hits) {
      const { authorization, ...rest } = hit
      log(`proxied ${hit.method} ${hit.path} as received`, {
        ...rest,
        jwt: authorization ? decodeJwtPayload(authorization) : null,
      })
    }
    const getHit = hits.find((x) => x.path === '/xrpc/app.skysift.feed.getMix')!
    expect(decodeJwtPayload(getHit.authorization!)).toMatchObject({
      iss: bob.did,
      aud: fg.did,
      lxm: 'app.skysift.feed.getMix',
    })
    // did:web documents fetched so far
    log('did.json fetches', seen.filter((s) => s.path === '/.well-known/did.json').length)

    // unknown service id in the proxy header
    const bad = await bob.agent.sessionManager.fetchHandler('/xrpc/app.skysift.feed.getMix', {
      method: 'GET',
      headers: { 'atproto-proxy': `${fg.did}#nope` },
    })
    log('proxy to missing service id', { status: bad.status, body: await bad.json() })
  }, 60_000)

  it('identity resolution: default (SSRF-safe) fetch refuses localhost, globalThis.fetch works', async () => {
    const safe = new IdResolver({ plcUrl: net.plcUrl })
    const safeRes = await safe.did.resolve(bob.did).then(
      (d) => (d ? 'resolved' : 'null'),
      (e: Error) => `error: ${e.message}`,
    )
    const safeWeb = await safe.did.resolve(fg.did).then(
      (d) => (d ? 'resolved' : 'null'),
      (e: Error) => `error: ${e.message}`,
    )
    log('IdResolver default fetch: did:plc on local PLC', safeRes)
    log('IdResolver default fetch: did:web:localhost%3Aport', safeWeb)
    const open = new IdResolver({ plcUrl: net.plcUrl, fetch: globalThis.fetch })
    const doc = await open.did.resolve(fg.did)
    expect(doc?.id).toBe(fg.did)
    const data = await open.did.resolveAtprotoData(bob.did)
    log('IdResolver(globalThis.fetch).resolveAtprotoData(bob)', data)
    expect(data.pds).toBe(net.pdsUrl)
  }, 60_000)

  it('PDS firehose on ws://localhost:<pdsPort>', async () => {
    const ws = new WebSocket(`${net.pdsWsUrl}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`)
    const frames = await new Promise<number>((resolve, reject) => {
      let n = 0
      const timer = setTimeout(() => {
        ws.close()
        resolve(n)
      }, 1500)
      ws.on('message', () => {
        n++
      })
      ws.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
    })
    await new Promise((r) => {
      ws.once('close', r)
      if (ws.readyState === WebSocket.CLOSED) r(undefined)
    })
    log('firehose frames replayed from cursor=0', frames)
    expect(frames).toBeGreaterThan(5)
  }, 30_000)
})

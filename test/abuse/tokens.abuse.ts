/**
 * Abuse — token lifetime. A signed-in reader's own key signs tokens that
 * are valid in every other way but issued years ahead or living for
 * decades; a real server process must refuse them on every authenticated
 * route (401 where a token is required, the anonymous feed on
 * getFeedSkeleton), while the baseline of the same run (an ordinary
 * 60-second token, one at the maximum lifetime, one a few seconds ahead of
 * the server's clock) is accepted on the same routes.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postEvent } from '../support/builders.ts'
import { startIdentities, type TestUser } from '../support/identity.ts'
import { FRESH, SERVICE, startServer, type AbuseServer } from './support/server.ts'

const MAX_LIFETIME_S = 3600
const YEAR_S = 365 * 86_400

/** A service-auth JWT with exactly these times (no `iat` when it is undefined), signed with the user's own key. */
async function tokenWith(user: TestUser, lxm: string, times: { iat?: number; exp: number }): Promise<string> {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const payload = {
    ...(times.iat === undefined ? {} : { iat: times.iat }),
    iss: user.did,
    aud: SERVICE,
    exp: times.exp,
    lxm,
    jti: randomBytes(16).toString('hex'),
  }
  const msg = `${enc({ typ: 'JWT', alg: 'ES256K' })}.${enc(payload)}`
  const sig = await user.keypair.sign(Buffer.from(msg, 'utf8'))
  return `${msg}.${Buffer.from(sig).toString('base64url')}`
}

/** Every route that needs a token, with a body it accepts from a signed-in reader. */
const REQUIRED: { nsid: string; method: 'GET' | 'POST'; params?: Record<string, string>; body?: unknown }[] = [
  { nsid: 'app.skysift.feed.getMix', method: 'GET', params: { feed: FRESH } },
  { nsid: 'app.skysift.feed.listMixes', method: 'GET' },
  { nsid: 'app.skysift.feed.listFeedback', method: 'GET', params: { feed: FRESH } },
  {
    nsid: 'app.skysift.feed.putMix',
    method: 'POST',
    body: { feed: FRESH, agents: [{ agent: 'keyword', weight: 50, options: { include: ['zebra'], requireMatch: true } }] },
  },
  { nsid: 'app.bsky.feed.sendInteractions', method: 'POST', body: { interactions: [] } },
]

describe('abuse: tokens with no bound on their lifetime (a real server process)', () => {
  let server: AbuseServer
  let user: TestUser
  let closeIds: () => Promise<void>
  const zebra = postEvent({ text: 'a zebra crossing', minutesAgo: 5 })
  const other = postEvent({ text: 'something else', minutesAgo: 1 })

  beforeAll(async () => {
    const ids = await startIdentities(['reader'])
    user = ids.users.reader
    closeIds = ids.close
    server = await startServer({ posts: [zebra, other], env: { SKYSIFT_ALLOW_INSECURE_HTTP: 'true', SKYSIFT_TOKEN_MAX_LIFETIME_S: String(MAX_LIFETIME_S) } })
  })
  afterAll(async () => {
    await server?.close()
    await closeIds?.()
  })

  const call = async (route: (typeof REQUIRED)[number], token: string) => {
    const res = await fetch(`${server.base}/xrpc/${route.nsid}?${new URLSearchParams(route.params ?? {})}`, {
      method: route.method,
      headers: { authorization: `Bearer ${token}`, ...(route.body ? { 'content-type': 'application/json' } : {}) },
      body: route.body ? JSON.stringify(route.body) : undefined,
    })
    return { status: res.status, body: (await res.json()) as { error?: string } }
  }
  const feed = async (token: string) => {
    const res = await fetch(`${server.base}/xrpc/app.bsky.feed.getFeedSkeleton?${new URLSearchParams({ feed: FRESH, limit: '10' })}`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(res.status).toBe(200)
    return ((await res.json()) as { feed: { post: string }[] }).feed.map((i) => i.post)
  }

  it('accepts ordinary tokens and refuses ones issued in the future or living too long, on every authenticated route', async () => {
    const now = () => Math.floor(Date.now() / 1000)
    const good: Record<string, (lxm: string) => Promise<string>> = {
      'a 60 s token': (lxm) => user.token(SERVICE, lxm),
      'the maximum lifetime': (lxm) => tokenWith(user, lxm, { iat: now(), exp: now() + MAX_LIFETIME_S }),
      'iat 30 s ahead (clock skew)': (lxm) => tokenWith(user, lxm, { iat: now() + 30, exp: now() + 90 }),
      'no iat, 10 minutes left': (lxm) => tokenWith(user, lxm, { exp: now() + 600 }),
    }
    const bad: Record<string, [string, (lxm: string) => Promise<string>]> = {
      'iat 10 years ahead': ['BadJwtIat', (lxm) => tokenWith(user, lxm, { iat: now() + 10 * YEAR_S, exp: now() + 10 * YEAR_S + 60 })],
      'exp 100 years ahead': ['BadJwtLifetime', (lxm) => tokenWith(user, lxm, { iat: now(), exp: now() + 100 * YEAR_S })],
      'no iat, exp 2 hours ahead': ['BadJwtLifetime', (lxm) => tokenWith(user, lxm, { exp: now() + 7200 })],
      'iat 2 minutes ahead': ['BadJwtIat', (lxm) => tokenWith(user, lxm, { iat: now() + 120, exp: now() + 180 })],
      'one second over the maximum': ['BadJwtLifetime', (lxm) => tokenWith(user, lxm, { iat: now(), exp: now() + MAX_LIFETIME_S + 1 })],
    }
    // baseline, same run: every route takes the reader's ordinary tokens (putMix first, so the feed is the reader's own)
    const ordered = [REQUIRED[3], ...REQUIRED.filter((_, i) => i !== 3)]
    for (const [name, make] of Object.entries(good)) {
      for (const route of ordered) expect((await call(route, await make(route.nsid))).status, `${name} on ${route.nsid}`).toBe(200)
      expect(await feed(await make('app.bsky.feed.getFeedSkeleton')), `${name}: the reader's own feed`).toEqual([zebra.uri])
    }
    const anonymous = await feed('not-a-token')
    expect(anonymous).toContain(other.uri)
    let refused = 0
    for (const [name, [error, make]] of Object.entries(bad)) {
      for (const route of REQUIRED) {
        const r = await call(route, await make(route.nsid))
        expect(r.status, `${name} on ${route.nsid}`).toBe(401)
        expect(r.body.error, `${name} on ${route.nsid}`).toBe(error)
        refused++
      }
      // the feed is served, but as to anyone: the reader's private mix stays theirs
      expect(await feed(await make('app.bsky.feed.getFeedSkeleton')), `${name} on getFeedSkeleton`).toEqual(anonymous)
    }
    expect(refused).toBe(Object.keys(bad).length * REQUIRED.length)
  })
})

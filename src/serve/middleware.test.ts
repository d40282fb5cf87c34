import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../logger.ts'
import { QueueFullError } from '../util/work-queue.ts'
import type { Authenticator } from './auth.ts'
import { errorHandler } from './errors.ts'
import { loadSkysiftLexicons } from './lexicons.ts'
import { xrpcMethod } from './middleware.ts'

/** An authenticator that takes `Bearer ok` as did:example:alice and refuses any other token. */
const auth = {
  verify: async (header: string) => {
    if (header === 'Bearer ok') return 'did:example:alice'
    throw Object.assign(new Error('bad token'), { error: 'BadJwt' })
  },
  optional: async (header: string | undefined) => (header === 'Bearer ok' ? { did: 'did:example:alice' } : { did: null, reason: 'no token' }),
} as unknown as Authenticator

const NSID = 'app.skysift.feed.deleteMix'

function app(): Hono {
  const a = new Hono()
  a.onError(errorHandler(silentLogger))
  const d = { auth, log: silentLogger }
  a.post('/strict', xrpcMethod(d, { nsid: NSID, auth: 'required', input: { maxKiB: 1, lexicons: loadSkysiftLexicons() } }), (c) =>
    c.json({ who: c.var.viewer, input: c.var.input }),
  )
  a.post('/lenient', xrpcMethod(d, { nsid: NSID, auth: 'optional', input: { maxKiB: 1, lexicons: loadSkysiftLexicons(), notJson: 'check' } }), (c) =>
    c.json({ who: c.var.requester.did }),
  )
  a.get('/busy', xrpcMethod(d, { nsid: NSID, busy: 'too many things wait' }), () => {
    throw new QueueFullError('full')
  })
  return a
}

const post = (path: string, body: string, token?: string) =>
  app().request(path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } })

describe('the XRPC input middleware', () => {
  it('checks the body size, then the token, then the body', async () => {
    const big = await post('/strict', JSON.stringify({ feed: 'x'.repeat(2000) }))
    expect(big.status).toBe(413)
    expect(await big.json()).toEqual({ error: 'PayloadTooLarge', message: 'request body over 1 KiB' })

    const noToken = await post('/strict', 'not json')
    expect(noToken.status).toBe(401)
    expect(await noToken.json()).toEqual({ error: 'AuthRequired', message: 'Authentication Required' })

    const badToken = await post('/strict', 'not json', 'nope')
    expect(await badToken.json()).toEqual({ error: 'BadJwt', message: 'bad token' })

    const notJson = await post('/strict', 'not json', 'ok')
    expect(notJson.status).toBe(400)
    expect(await notJson.json()).toEqual({ error: 'InvalidRequest', message: 'Error: body is not JSON' })

    const invalid = await post('/strict', JSON.stringify({ feed: 3 }), 'ok')
    expect(invalid.status).toBe(400)
    expect((await invalid.json()).error).toBe('InvalidRequest')

    const ok = await post('/strict', JSON.stringify({ feed: 'at://did:example:bob/app.bsky.feed.generator/x' }), 'ok')
    expect(await ok.json()).toEqual({ who: 'did:example:alice', input: { feed: 'at://did:example:bob/app.bsky.feed.generator/x' } })
  })

  it('lets anyone call an open method, and checks a body that is not JSON as null when told to', async () => {
    const res = await post('/lenient', 'not json')
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: string; message: string }
    expect(body.error).toBe('InvalidRequest')
    expect(body.message).not.toBe('Error: body is not JSON')
    expect(await (await post('/lenient', JSON.stringify({ feed: 'at://did:example:bob/app.bsky.feed.generator/x' }))).json()).toEqual({ who: null })
  })

  it('answers a full work queue with a 429 in the words of the method', async () => {
    const res = await app().request('/busy')
    expect(res.status).toBe(429)
    expect(await res.json()).toEqual({ error: 'RateLimitExceeded', message: 'too many things wait' })
  })
})

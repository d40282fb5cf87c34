import fs from 'node:fs'
import path from 'node:path'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { queuePrefix, tempDir, testConfig, waitFor } from './support/resources.ts'

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'agents')
const SERVICE = 'did:web:feeds.test'

/** Threads of this process now (the sandbox runs each loaded agent in a worker thread). */
const threads = () => Number(/Threads:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1])

describe('agent submissions: nothing stays loaded, and attempts have a budget per author and per hour', () => {
  let ctx: AppContext
  let app: Hono
  let users: Record<string, TestUser>
  const cleanups: (() => unknown)[] = []

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['ann', 'bob', 'cat', 'dan'])
    users = ids.users
    cleanups.push(ids.close)
    ctx = new AppContext(
      testConfig({
        dbPath: path.join(t.dir, 'skysift.db'),
        queuePrefix: q.prefix,
        serviceDid: SERVICE,
        allowInsecureHttp: true,
        submitPerAuthorPerHour: 4,
        submitPerHour: 9,
      }),
      silentLogger,
    )
    const served = createServeApp(ctx)
    app = served.app
    cleanups.push(() => ctx.close(), served.close)
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const submit = async (who: TestUser, source: string) => {
    const res = await app.request('/xrpc/app.skysift.agent.submitAgent', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await who.token(SERVICE, 'app.skysift.agent.submitAgent')}` },
      body: JSON.stringify({ source }),
    })
    return { status: res.status, body: (await res.json()) as { error?: string; message?: string; id?: string }, retryAfter: res.headers.get('retry-after') }
  }

  it('closes the sandbox it loaded to read the metadata, on success and on every refusal', async () => {
    const good = fs.readFileSync(path.join(FIXTURES, 'good-agent.js'), 'utf8')
    // @NOTE the first signed-in request starts the serving process's signature thread (SKYSIFT_VERIFY_THREAD), which
    // stays: started before the count (it has answered once the request has), so that only the sandboxes' threads count
    await app.request(`/xrpc/app.skysift.feed.listMixes`, {
      headers: { authorization: `Bearer ${await users.ann.token(SERVICE, 'app.skysift.feed.listMixes')}` },
    })
    const before = threads()
    // accepted twice (same id, same author), taken by another author, a built-in's id, not loading at all
    expect((await submit(users.ann, good)).status).toBe(200)
    expect((await submit(users.ann, good)).status).toBe(200)
    expect((await submit(users.bob, good)).body.message).toMatch(/taken by another author/)
    const shadow = await submit(
      users.bob,
      "export default { id: 'recency', version: '1', title: 't', description: 'd', api: 1, needs: [], scoreBatch(p) { return p.map(() => 0) } }",
    )
    expect(shadow.body.message).toMatch(/built-in/)
    expect((await submit(users.cat, fs.readFileSync(path.join(FIXTURES, 'wrong-api.js'), 'utf8'))).body.error).toBe('InvalidAgent')
    // terminated workers leave within moments
    await waitFor(() => threads() <= before, `threads back to ${before} (now ${threads()})`, 10_000, 50)
  })

  it('counts attempts, failed ones too: the fifth of one author in an hour is refused, and the tenth of everyone', async () => {
    // ann has made 2, bob 2, cat 1: five attempts so far
    expect((await submit(users.ann, 'not javascript at all (')).status).toBe(400)
    expect((await submit(users.ann, 'not javascript either (')).status).toBe(400)
    const refused = await submit(users.ann, fs.readFileSync(path.join(FIXTURES, 'good-agent.js'), 'utf8'))
    expect(refused.status).toBe(429)
    expect(refused.body.error).toBe('RateLimitExceeded')
    expect(refused.body.message).toMatch(/4 submissions per author per hour/)
    expect(Number(refused.retryAfter)).toBeGreaterThan(3000)
    // seven counted; two more from others, then everyone is refused
    expect((await submit(users.cat, 'nope (')).status).toBe(400)
    expect((await submit(users.dan, 'nope (')).status).toBe(400)
    const full = await submit(users.dan, 'nope (')
    expect(full.status).toBe(429)
    expect(full.body.message).toMatch(/at most 9 submissions per hour/)
  })
})

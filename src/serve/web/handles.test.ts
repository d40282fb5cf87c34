import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdentities, type TestUser } from '../../../test/support/identity.ts'
import { silentLogger } from '../../logger.ts'
import { createIdResolver } from '../auth.ts'
import { HandleDirectory, identityLookups } from './handles.ts'

/** A com.atproto.identity.resolveHandle service answering from a table, counting requests, optionally slow. */
async function handleService(table: Map<string, string>, delayMs = 0): Promise<{ url: string; calls: () => number; close: () => Promise<void> }> {
  let calls = 0
  const app = new Hono()
  app.get('/xrpc/com.atproto.identity.resolveHandle', async (c) => {
    calls++
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs))
    const did = table.get(c.req.query('handle') ?? '')
    return did ? c.json({ did }) : c.json({ error: 'InvalidRequest', message: 'Unable to resolve handle' }, 400)
  })
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: () => calls, close: () => new Promise((r) => server.close(() => r())) }
}

describe("authors' handles on the web pages", () => {
  let users: Record<string, TestUser>
  const closers: (() => Promise<void>)[] = []
  beforeAll(async () => {
    const ids = await startIdentities(['ann', 'bob', 'eve'])
    users = ids.users
    closers.push(ids.close)
  })
  afterAll(async () => {
    for (const c of closers) await c()
  })

  it('shows a handle only when it checks out both ways, and remembers it', async () => {
    // eve's DID document claims eve.test, but eve.test points at ann: not shown
    const svc = await handleService(
      new Map([
        [users.ann.handle, users.ann.did],
        [users.bob.handle, users.bob.did],
        [users.eve.handle, users.ann.did],
      ]),
    )
    closers.push(svc.close)
    const dir = new HandleDirectory(identityLookups(createIdResolver('http://127.0.0.1:1', true), svc.url), silentLogger)
    const got = await dir.handles([users.ann.did, users.bob.did, users.eve.did, 'did:plc:nobodynobodynobodynobody'], 5000)
    expect(got).toEqual(
      new Map([
        [users.ann.did, 'ann.test'],
        [users.bob.did, 'bob.test'],
      ]),
    )
    const calls = svc.calls()
    expect(await dir.handles([users.ann.did, users.bob.did], 5000)).toEqual(got)
    expect(svc.calls()).toBe(calls)
  })

  it('waits only a moment for slow look-ups, runs few at once, and keeps a short line', async () => {
    const table = new Map(Object.values(users).map((u) => [u.handle, u.did]))
    const svc = await handleService(table, 300)
    closers.push(svc.close)
    const dir = new HandleDirectory(identityLookups(createIdResolver('http://127.0.0.1:1', true), svc.url), silentLogger, { concurrency: 1, queue: 1 })
    const t0 = performance.now()
    const first = await dir.handles([users.ann.did, users.bob.did, users.eve.did], 50)
    expect(performance.now() - t0).toBeLessThan(250)
    expect(first.size).toBe(0)
    // one runs, one waits its turn, the third is turned away (it is looked up for a later page)
    await new Promise((r) => setTimeout(r, 1500))
    expect(svc.calls()).toBe(2)
    const later = await dir.handles([users.ann.did, users.bob.did], 0)
    expect([...later.values()].sort()).toEqual(['ann.test', 'bob.test'])
  })
})

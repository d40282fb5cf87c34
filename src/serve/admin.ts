import { timingSafeEqual } from 'node:crypto'
import { Hono, type Context, type Next } from 'hono'
import type { AgentStore } from '../score/agent-registry.ts'
import type { AgentHost } from '../score/host.ts'
import { XrpcError } from './errors.ts'

export interface AdminAgentDeps {
  host: AgentHost
  store: AgentStore
  /** apply a change now rather than on the next sync tick */
  changed: () => Promise<void>
  allowPrivate: boolean
}

/** Constant-time check of `Authorization: Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header?.trim() ?? '')
  if (!m) return false
  const a = Buffer.from(m[1])
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

export function requireAdmin(token: string) {
  return async (c: Context, next: Next) => {
    if (!bearerMatches(c.req.header('authorization'), token)) throw new XrpcError(401, 'AuthRequired', 'admin token required')
    await next()
  }
}

/** Admin API for run-time agents: review submissions, approve, reject, add remote agents, re-enable. */
export function adminAgentRoutes(d: AdminAgentDeps): Hono {
  const app = new Hono()
  const view = (id: string) => {
    const rec = d.store.get(id)
    const live = d.host.describe().find((a) => a.id === id)
    return { ...(rec ? { ...rec, source: rec.source ? `${rec.source.length} bytes` : null, config: { ...rec.config, salt: rec.config.salt ? '[set]' : undefined } } : { id }), live: live ?? null }
  }
  const found = (id: string) => {
    if (!d.store.get(id)) throw new XrpcError(404, 'NotFound', `no run-time agent ${id}`)
  }
  app.get('/', (c) => c.json({ agents: d.store.list().map((a) => view(a.id)), running: d.host.describe() }))
  app.get('/:id/source', (c) => {
    const rec = d.store.get(c.req.param('id'))
    if (!rec?.source) throw new XrpcError(404, 'NotFound', 'no source for this agent')
    return c.text(rec.source)
  })
  app.post('/:id/approve', async (c) => {
    found(c.req.param('id'))
    d.store.decide(c.req.param('id'), 'approved', (await c.req.json().catch(() => ({})))?.note ?? null)
    await d.changed()
    return c.json(view(c.req.param('id')))
  })
  app.post('/:id/reject', async (c) => {
    found(c.req.param('id'))
    d.store.decide(c.req.param('id'), 'rejected', (await c.req.json().catch(() => ({})))?.note ?? null)
    await d.changed()
    return c.json(view(c.req.param('id')))
  })
  app.post('/:id/enable', (c) => {
    if (!d.host.kindOf(c.req.param('id'))) throw new XrpcError(404, 'NotFound', `no agent ${c.req.param('id')}`)
    d.host.enable(c.req.param('id'))
    return c.json(view(c.req.param('id')))
  })
  app.post('/remote', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { url?: unknown; rawDids?: unknown; allowPrivateNetwork?: unknown; deadlineMs?: unknown } | null
    if (!body || typeof body.url !== 'string') throw new XrpcError(400, 'InvalidRequest', 'url is required')
    if (body.allowPrivateNetwork && !d.allowPrivate) throw new XrpcError(400, 'InvalidRequest', 'private network agents need SKYSIFT_ALLOW_PRIVATE_AGENTS=true')
    try {
      const rec = await d.store.addRemote(body.url, { rawDids: body.rawDids === true, allowPrivateNetwork: body.allowPrivateNetwork === true, deadlineMs: typeof body.deadlineMs === 'number' ? body.deadlineMs : undefined }, 'admin')
      return c.json(view(rec.id))
    } catch (err) {
      throw new XrpcError(400, 'InvalidAgent', (err as Error).message)
    }
  })
  return app
}

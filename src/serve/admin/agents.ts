import { Hono, type Context } from 'hono'
import { z } from 'zod'
import type { AgentStates, AgentStore } from '../../score/agent-registry.ts'
import type { AgentHost } from '../../score/host.ts'
import { withTimeout } from '../../util/timeout.ts'
import { invalidRequest, XrpcError } from '../errors.ts'
import { xrpcBodyLimit } from '../middleware.ts'

export interface AdminAgentDeps {
  host: AgentHost
  store: AgentStore
  /** which agents are disabled, shared by every process (without it, enabling reaches this process only) */
  states?: AgentStates
  /** apply a change now rather than on the next sync tick */
  changed: () => Promise<void>
  allowPrivate: boolean
}

/** The body of approve and reject: an optional note kept with the decision. */
export const decisionBody = z.strictObject({ note: z.string().max(2000).nullable().optional() })

/** The body of adding a remote agent. */
export const remoteBody = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(2000),
  rawDids: z.boolean().optional(),
  allowPrivateNetwork: z.boolean().optional(),
  deadlineMs: z.number().int().min(1).max(60_000).optional(),
})

/** Admin request bodies are at most this large. */
const ADMIN_BODY_MAX_KIB = 64

/**
 * A JSON body checked against `schema` (an empty body is `{}`); anything
 * else is a 400 naming the field and what is wrong with it.
 */
async function adminBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  const text = (await c.req.text()).trim()
  let input: unknown = {}
  if (text) {
    try {
      input = JSON.parse(text)
    } catch {
      throw invalidRequest('the body is not JSON')
    }
  }
  const r = schema.safeParse(input)
  if (!r.success) {
    const issue = r.error.issues[0]
    throw invalidRequest(`${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`)
  }
  return r.data
}

/** Admin API for run-time agents: review submissions, approve, reject, add remote agents, re-enable. */
export function adminAgentRoutes(d: AdminAgentDeps): Hono {
  const app = new Hono()
  app.use('*', xrpcBodyLimit(ADMIN_BODY_MAX_KIB))
  const view = (id: string) => {
    const rec = d.store.get(id)
    const live = d.host.describe().find((a) => a.id === id)
    return {
      ...(rec
        ? { ...rec, source: rec.source ? `${rec.source.length} bytes` : null, config: { ...rec.config, salt: rec.config.salt ? '[set]' : undefined } }
        : { id }),
      live: live ?? null,
    }
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
  for (const [verb, status] of [
    ['approve', 'approved'],
    ['reject', 'rejected'],
  ] as const) {
    app.post(`/:id/${verb}`, async (c) => {
      const { note } = await adminBody(c, decisionBody)
      found(c.req.param('id'))
      d.store.decide(c.req.param('id'), status, note ?? null)
      await d.changed()
      return c.json(view(c.req.param('id')))
    })
  }
  app.post('/:id/enable', async (c) => {
    const id = c.req.param('id')
    if (!d.host.kindOf(id)) throw new XrpcError(404, 'NotFound', `no agent ${id}`)
    if (d.states) {
      await withTimeout(d.states.enable(id), 2000).catch((err) => {
        throw new XrpcError(503, 'Unavailable', `cannot enable ${id} in every process: ${(err as Error).message}`)
      })
    }
    d.host.enable(id)
    return c.json(view(id))
  })
  app.post('/remote', async (c) => {
    const body = await adminBody(c, remoteBody)
    if (body.allowPrivateNetwork && !d.allowPrivate) throw new XrpcError(400, 'InvalidRequest', 'private network agents need SKYSIFT_ALLOW_PRIVATE_AGENTS=true')
    try {
      const rec = await d.store.addRemote(
        body.url,
        { rawDids: body.rawDids === true, allowPrivateNetwork: body.allowPrivateNetwork === true, deadlineMs: body.deadlineMs },
        'admin',
      )
      return c.json(view(rec.id))
    } catch (err) {
      throw new XrpcError(400, 'InvalidAgent', (err as Error).message)
    }
  })
  return app
}

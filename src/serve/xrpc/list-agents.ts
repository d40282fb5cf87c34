import type { Hono } from 'hono'
import type { AppDeps } from './deps.ts'

const NSID = 'app.skysift.agent.listAgents'

/** app.skysift.agent.listAgents: the agents a mix may use, with their options, status and usage. */
export function listAgents(app: Hono, d: AppDeps): void {
  app.get(`/xrpc/${NSID}`, (c) => {
    const usage = d.agents.usage.all()
    const agents = d.agents.host.describe().map((a) => ({
      id: a.id,
      version: a.version,
      title: a.title,
      description: a.description,
      ...(a.author ? { author: a.author } : {}),
      kind: a.kind,
      options: a.options,
      needs: a.needs,
      status: a.status,
      ...(a.reason ? { statusReason: a.reason } : {}),
      usage: usage.get(a.id) ?? { mixes: 0, feedDefaults: 0, itemsShaped: 0 },
    }))
    return c.json({ agents })
  })
}

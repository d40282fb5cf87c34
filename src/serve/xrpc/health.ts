import type { Hono } from 'hono'
import type { AppDeps } from './deps.ts'

/** /xrpc/_health: the version, each health check, and how the ingest is doing. */
export function health(app: Hono, d: AppDeps): void {
  app.get('/xrpc/_health', async (c) => {
    const checks: Record<string, string> = {}
    let ok = true
    for (const h of d.health) {
      try {
        await h.check()
        checks[h.name] = 'ok'
      } catch (err) {
        ok = false
        checks[h.name] = (err as Error).message || 'failed'
      }
    }
    // @NOTE a node that serves is healthy even when its source is unreachable: it still serves what it has, and a load
    // balancer that took it out would serve nothing at all. `ingesting` says whether new events are coming in.
    const ingest = d.ingest ? await d.ingest().catch(() => null) : null
    return c.json({ version: d.version, ok, serving: ok, ...(ingest ? { ingesting: ingest.ingesting, ingest } : {}), checks }, ok ? 200 : 503)
  })
}

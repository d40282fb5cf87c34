import { Hono } from 'hono'
import { adminAgentRoutes } from '../admin/agents.ts'
import { requireAdmin } from '../admin/auth.ts'
import { errorHandler } from '../errors.ts'
import type { AppDeps } from './deps.ts'
import { deleteMix } from './delete-mix.ts'
import { describeFeedGenerator } from './describe-feed-generator.ts'
import { didDocument } from './did-document.ts'
import { explainItem } from './explain-item.ts'
import { getFeedSkeleton } from './get-feed-skeleton.ts'
import { getMix } from './get-mix.ts'
import { health } from './health.ts'
import { listAgents } from './list-agents.ts'
import { listFeedback } from './list-feedback.ts'
import { listMixes } from './list-mixes.ts'
import { previewMix } from './preview-mix.ts'
import { putMix } from './put-mix.ts'
import { sendInteractions } from './send-interactions.ts'
import { submitAgent } from './submit-agent.ts'
import { undoFeedback } from './undo-feedback.ts'

/** The methods, one file each: every one takes the app and the deps and adds its route. */
const METHODS = [
  getFeedSkeleton,
  getMix,
  listMixes,
  deleteMix,
  previewMix,
  explainItem,
  listFeedback,
  undoFeedback,
  sendInteractions,
  putMix,
  listAgents,
  submitAgent,
]

/** The Hono app: feed-generator XRPC, Skysift's mix methods, health, and the landing page. */
export function createApp(d: AppDeps): Hono {
  const app = new Hono()
  app.onError(errorHandler(d.log))
  app.notFound((c) => {
    // XRPC clients get XRPC errors; a browser gets a page
    if (c.req.path.startsWith('/xrpc/')) return c.json({ error: 'MethodNotImplemented', message: 'Method Not Implemented' }, 404)
    if (d.notFoundPage && c.req.header('accept')?.includes('text/html')) return d.notFoundPage(c)
    return c.json({ error: 'NotFound', message: 'Not Found' }, 404)
  })
  d.ops?.install(app)
  if (d.web) app.route('/', d.web)
  didDocument(app, d)
  describeFeedGenerator(app, d)
  for (const method of METHODS) method(app, d)
  if (d.adminToken) {
    app.use('/admin/api/*', requireAdmin(d.adminToken, { publicUrl: d.config.publicUrl }))
    app.route('/admin/api/agents', adminAgentRoutes(d.agents))
  }
  health(app, d)
  return app
}

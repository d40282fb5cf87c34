import type { Hono } from 'hono'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'
import { mixView } from './util.ts'

const NSID = 'app.skysift.feed.listMixes'

/** app.skysift.feed.listMixes: the subscriber's mixes, one per feed they set one for. */
export function listMixes(app: Hono, d: AppDeps): void {
  app.get(`/xrpc/${NSID}`, xrpcMethod(d, { nsid: NSID, auth: 'required' }), (c) => c.json({ mixes: d.feeds.listMixes(c.var.viewer).map(mixView) }))
}

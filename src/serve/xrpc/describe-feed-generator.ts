import type { Hono } from 'hono'
import type { Feed } from '../../feeds.ts'
import type { AppDeps } from './deps.ts'

const NSID = 'app.bsky.feed.describeFeedGenerator'

/** app.bsky.feed.describeFeedGenerator: our DID, the hosted feeds, and where the policies are. */
export function describeFeedGenerator(app: Hono, d: Pick<AppDeps, 'config'> & { feeds: { feeds: Feed[] } }): void {
  app.get(`/xrpc/${NSID}`, (c) =>
    c.json({
      did: d.config.serviceDid,
      feeds: d.feeds.feeds.map((f) => ({ uri: f.uri })),
      links: { privacyPolicy: `${d.config.publicUrl}/#privacy`, termsOfService: `${d.config.publicUrl}/#terms` },
    }),
  )
}

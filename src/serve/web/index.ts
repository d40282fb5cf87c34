/**
 * Web pages for subscribers: the feeds and agents catalog, sign-in with
 * atproto OAuth, and a settings page per feed to choose, preview and save a
 * mix (privately, or as an app.skysift.feed.mix record in the reader's own
 * repository), with their feedback and its undo.
 *
 * Plain HTML forms that POST and redirect back (no JavaScript needed);
 * /static/skysift.js enhances them (live preview, adding and removing agent
 * rows without a round trip). Every POST needs the CSRF token of the form
 * (signed double-submit cookie) and a same-origin Origin when one is sent.
 *
 * The pages, by group, are in pages/; this file builds what they share and
 * mounts them.
 */
import type { NodeOAuthClient } from '@atproto/oauth-client-node'
import { Hono, type Context } from 'hono'
import type { Logger } from '../../logger.ts'
import type { FeedService } from '../../feed/service.ts'
import type { UsageCounter } from '../../feed/usage.ts'
import type { AgentHost } from '../../score/host.ts'
import type { HandleDirectory } from './handles.ts'
import { createOAuthClient, type OAuthMode, type OAuthSetup } from './oauth.ts'
import { browsePages } from './pages/browse.ts'
import { pageKit } from './pages/kit.ts'
import { settingsPages } from './pages/settings.ts'
import { signinPages } from './pages/signin.ts'
import { staticPages } from './pages/static.ts'
import type { PostTexts, WebSessions } from './ports.ts'
import { cookies } from './session.ts'
import { messagePage } from './views.ts'

export interface WebDeps {
  feeds: FeedService
  host: AgentHost
  usage: UsageCounter
  /** browser sessions, the OAuth client's stores and the cookie secret (the store's WebSessionStore) */
  sessions: WebSessions
  /** stored posts by URI, for previews and the feedback list (the store's PostReader) */
  posts: PostTexts
  log: Logger
  version: string
  serviceDid: string
  oauth: OAuthSetup
  /** signs cookies; default: a secret generated once and kept by the session store */
  cookieSecret?: string
  /** authors' handles for previews and /why (resolved and cached); without it, DIDs are shown */
  handles?: HandleDirectory
}

export interface Web {
  app: Hono
  /** the HTML "page not found" for browsers (paths outside /xrpc) */
  notFound(c: Context): Response | Promise<Response>
  oauth: NodeOAuthClient
  mode: OAuthMode
  close(): void
}

export function createWeb(d: WebDeps & { publicUrl: string }): Web {
  const app = new Hono()
  const log = d.log
  const secret = d.sessions.cookieSecret(d.cookieSecret)
  const { client, mode, close: closeOAuth } = createOAuthClient(d.sessions, d.oauth)
  const k = pageKit(d, cookies(d.sessions, secret, d.publicUrl), { client, mode })
  const pruner = setInterval(() => {
    try {
      d.sessions.prune()
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'web session prune failed')
    }
  }, 3_600_000)
  pruner.unref()

  app.onError((err, c) => {
    log.error({ err, path: c.req.path }, 'web page failed')
    return k.page(
      c,
      messagePage({
        ...k.chrome(c, 'Something went wrong', 'other', null),
        heading: 'Something went wrong',
        message: 'The server could not show this page. Please try again.',
      }),
      500,
    )
  })

  staticPages(app)
  browsePages(app, k)
  signinPages(app, k)
  settingsPages(app, k)

  return {
    app,
    notFound: k.notFound,
    oauth: client,
    mode,
    close() {
      clearInterval(pruner)
      closeOAuth()
    },
  }
}

import type { NodeOAuthClient } from '@atproto/oauth-client-node'
import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Logger } from '../../../logger.ts'
import type { FeedService } from '../../../feed/service.ts'
import type { UsageCounter } from '../../../feed/usage.ts'
import type { AgentHost } from '../../../score/host.ts'
import { optionsForm, type FormBody } from '../forms.ts'
import type { HandleDirectory } from '../handles.ts'
import type { OAuthMode } from '../oauth.ts'
import type { PostTexts, WebSession } from '../ports.ts'
import type { Cookies } from '../session.ts'
import { messagePage, type CatalogAgent, type PageChrome } from '../views.ts'

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
}

export type PageStatus = 200 | 400 | 403 | 404 | 429 | 500 | 502

/** What every page group is built from: the services, the cookies, and the page helpers they share. */
export interface PageKit {
  feeds: FeedService
  host: AgentHost
  usage: UsageCounter
  posts: PostTexts
  log: Logger
  handles?: HandleDirectory
  cookies: Cookies
  oauth: { client: NodeOAuthClient; mode: OAuthMode }
  /** the host's agents with their option forms; usage counts only where shown (they scan every mix) */
  catalog(withUsage?: boolean): CatalogAgent[]
  /** the header, navigation and CSRF token of a page */
  chrome(c: Context, title: string, nav: PageChrome['nav'], session: WebSession | null): PageChrome
  /** an HTML page with the security headers, never cached */
  page(c: Context, body: string | Promise<string>, status?: PageStatus): Response | Promise<Response>
  /** the page for a form refused by the CSRF check */
  refuse(c: Context, session: WebSession | null): Response | Promise<Response>
  /** the HTML "page not found" */
  notFound(c: Context): Response | Promise<Response>
  /** the limit on a form's body */
  formLimit: MiddlewareHandler
  formBody(c: Context): Promise<FormBody>
}

export interface KitDeps {
  feeds: FeedService
  host: AgentHost
  usage: UsageCounter
  posts: PostTexts
  log: Logger
  version: string
  serviceDid: string
  handles?: HandleDirectory
}

export function pageKit(d: KitDeps, cookies: Cookies, oauth: PageKit['oauth']): PageKit {
  const chrome: PageKit['chrome'] = (c, title, nav, session) => ({
    title,
    nav,
    session: session ? { did: session.did, handle: session.handle } : null,
    csrf: cookies.csrfOf(c),
    version: d.version,
    serviceDid: d.serviceDid,
  })
  const page: PageKit['page'] = (c, body, status = 200) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v)
    c.header('cache-control', 'no-store')
    return c.html(body, status)
  }
  return {
    feeds: d.feeds,
    host: d.host,
    usage: d.usage,
    posts: d.posts,
    log: d.log,
    handles: d.handles,
    cookies,
    oauth,
    catalog(withUsage = false) {
      const usage = withUsage ? d.usage.all() : new Map()
      return d.host
        .describe()
        .map((status) => ({ status, usage: usage.get(status.id) ?? { mixes: 0, feedDefaults: 0, itemsShaped: 0 }, form: optionsForm(status.options) }))
    },
    chrome,
    page,
    refuse: (c, session) =>
      page(
        c,
        messagePage({
          ...chrome(c, 'Form expired', 'other', session),
          heading: 'This form has expired',
          message: 'For your safety the form was refused: it did not come from this site, or it is too old. Go back, reload the page and try again.',
        }),
        403,
      ),
    notFound: (c) =>
      page(
        c,
        messagePage({ ...chrome(c, 'Page not found', 'other', cookies.sessionOf(c)), heading: 'Page not found', message: 'There is no page at this address.' }),
        404,
      ),
    formLimit: bodyLimit({ maxSize: 128 * 1024, onError: (c) => c.text('form too large', 413) }),
    formBody: async (c) => (await c.req.parseBody({ all: true })) as FormBody,
  }
}

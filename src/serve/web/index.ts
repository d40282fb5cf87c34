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
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { Agent } from '@atproto/api'
import type { NodeOAuthClient } from '@atproto/oauth-client-node'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { Feed } from '../../feeds.ts'
import { parseAtUri } from '../../util/at-ids.ts'
import type { Logger } from '../../logger.ts'
import { QueueFullError } from '../../util/work-queue.ts'
import { explain } from '../../rank/explain.ts'
import { decodeFeedContext } from '../../rank/feed-context.ts'
import type { FeedService } from '../../rank/feed-service.ts'
import { resolveMix, type MixEntry } from '../../rank/mix.ts'
import type { UsageCounter } from '../../rank/usage.ts'
import { FieldError, type AgentHost } from '../../score/host.ts'
import type { Sqlite } from '../../store/db.ts'
import { entriesOf, fieldForProblem, optionsForm, problemOf, readMixForm, type FieldProblem, type FormBody, type FormRow } from './forms.ts'
import { createOAuthClient, type OAuthMode, type OAuthSetup } from './oauth.ts'
import { cookieSecret, SESSION_TTL_MS, signValue, unsignValue, WebSessionStore, type WebSession } from './store.ts'
import type { HandleDirectory } from './handles.ts'
import { agentsPage, feedsPage, homePage, messagePage, postWebUrl, whyPage, previewList, renderedFields, settingsPage, signinPage, type CatalogAgent, type FeedbackItem, type PageChrome, type PreviewItem } from './views.ts'

export const MIX_COLLECTION = 'app.skysift.feed.mix'
const PREVIEW_LIMIT = 20
const FEEDBACK_LIMIT = 30

export interface WebDeps {
  feeds: FeedService
  host: AgentHost
  usage: UsageCounter
  db: Sqlite
  log: Logger
  version: string
  serviceDid: string
  oauth: OAuthSetup
  /** signs cookies; default: a secret generated once and kept in SQLite */
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

const STATIC = {
  css: fs.readFileSync(new URL('./static/skysift.css', import.meta.url), 'utf8'),
  js: fs.readFileSync(new URL('./static/skysift.js', import.meta.url), 'utf8'),
  favicon: fs.readFileSync(new URL('./static/favicon.svg', import.meta.url), 'utf8'),
}

/** The cookies' names: `__Host-` prefixed (Secure, whole host) when served over https. */
export function cookieNames(publicUrl: string): { session: string; csrf: string; secure: boolean } {
  const secure = new URL(publicUrl).protocol === 'https:'
  return secure ? { session: '__Host-skysift_session', csrf: '__Host-skysift_csrf', secure } : { session: 'skysift_session', csrf: 'skysift_csrf', secure }
}

/**
 * A signed-in browser session for `did` without the OAuth round trip (tests,
 * tools): the `Cookie` header value that carries it.
 */
export function sessionCookieFor(db: Sqlite, publicUrl: string, did: string, opts: { handle?: string; secret?: string } = {}): string {
  const secret = cookieSecret(db, opts.secret)
  const id = new WebSessionStore(db).create(did, opts.handle ?? null)
  return `${cookieNames(publicUrl).session}=${signValue(secret, 'session', id)}`
}

/** A relative path to return to after signing in (never another origin). */
function safeNext(v: unknown): string {
  return typeof v === 'string' && /^\/(?![/\\])[^\s]*$/.test(v) && v.length < 500 ? v : '/feeds'
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
}

export function createWeb(d: WebDeps & { publicUrl: string }): Web {
  const app = new Hono()
  const log = d.log
  const secret = cookieSecret(d.db, d.cookieSecret)
  const names = cookieNames(d.publicUrl)
  const sessions = new WebSessionStore(d.db)
  const { client, mode, close: closeOAuth } = createOAuthClient(d.db, d.oauth)
  const publicOrigin = new URL(d.publicUrl).origin
  const pruner = setInterval(() => {
    try {
      sessions.prune()
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'web session prune failed')
    }
  }, 3_600_000)
  pruner.unref()

  /** The host's agents with their option forms; usage counts only where shown (they scan every mix). */
  const catalog = (withUsage = false): CatalogAgent[] => {
    const usage = withUsage ? d.usage.all() : new Map()
    return d.host.describe().map((status) => ({ status, usage: usage.get(status.id) ?? { mixes: 0, feedDefaults: 0, itemsShaped: 0 }, form: optionsForm(status.options) }))
  }

  const sessionOf = (c: Context): (WebSession & { id: string }) | null => {
    const id = unsignValue(secret, 'session', getCookie(c, names.session))
    if (!id) return null
    const s = sessions.get(id)
    return s ? { ...s, id } : null
  }

  /** The CSRF token for forms on this page (setting the cookie it is checked against when missing). */
  const csrfOf = (c: Context): string => {
    let nonce = getCookie(c, names.csrf)
    if (!nonce || !/^[A-Za-z0-9_-]{32,64}$/.test(nonce)) {
      nonce = randomBytes(24).toString('base64url')
      setCookie(c, names.csrf, nonce, { path: '/', httpOnly: true, sameSite: 'Lax', secure: names.secure })
    }
    return signValue(secret, 'csrf', nonce)
  }

  /** Refuses cross-site POSTs: the form's token must match the cookie, and a sent Origin must be ours. */
  const csrfOk = (c: Context, body: FormBody): boolean => {
    const origin = c.req.header('origin')
    if (origin && origin !== new URL(c.req.url).origin && origin !== publicOrigin) return false
    if (c.req.header('sec-fetch-site') === 'cross-site') return false
    const nonce = getCookie(c, names.csrf)
    const token = typeof body._csrf === 'string' ? body._csrf : c.req.header('x-csrf-token')
    return !!nonce && unsignValue(secret, 'csrf', token) === nonce
  }

  const chrome = (c: Context, title: string, nav: PageChrome['nav'], session: WebSession | null): PageChrome => ({
    title,
    nav,
    session: session ? { did: session.did, handle: session.handle } : null,
    csrf: csrfOf(c),
    version: d.version,
    serviceDid: d.serviceDid,
  })

  const page = (c: Context, body: string | Promise<string>, status: 200 | 400 | 403 | 404 | 429 | 500 | 502 = 200) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v)
    c.header('cache-control', 'no-store')
    return c.html(body, status)
  }

  const refuse = (c: Context, session: WebSession | null) =>
    page(c, messagePage({ ...chrome(c, 'Form expired', 'other', session), heading: 'This form has expired', message: 'For your safety the form was refused: it did not come from this site, or it is too old. Go back, reload the page and try again.' }), 403)

  const formBody = async (c: Context): Promise<FormBody> => (await c.req.parseBody({ all: true })) as FormBody

  app.onError((err, c) => {
    log.error({ err, path: c.req.path }, 'web page failed')
    return page(c, messagePage({ ...chrome(c, 'Something went wrong', 'other', null), heading: 'Something went wrong', message: 'The server could not show this page. Please try again.' }), 500)
  })

  const formLimit = bodyLimit({ maxSize: 128 * 1024, onError: (c) => c.text('form too large', 413) })

  app.get('/static/skysift.css', (c) => {
    c.header('cache-control', 'public, max-age=300')
    c.header('content-type', 'text/css; charset=utf-8')
    return c.body(STATIC.css)
  })
  app.get('/static/skysift.js', (c) => {
    c.header('cache-control', 'public, max-age=300')
    c.header('content-type', 'text/javascript; charset=utf-8')
    return c.body(STATIC.js)
  })

  // @NOTE browsers ask for /favicon.ico whatever the page links: both names serve the SVG
  for (const icon of ['/favicon.svg', '/favicon.ico']) {
    app.get(icon, (c) => {
      c.header('cache-control', 'public, max-age=86400')
      c.header('content-type', 'image/svg+xml')
      return c.body(STATIC.favicon)
    })
  }

  app.get('/', (c) => {
    const s = sessionOf(c)
    return page(c, homePage({ ...chrome(c, 'Feeds where you choose the algorithm', 'home', s), feeds: d.feeds.feeds, agents: catalog() }))
  })

  app.get('/why', async (c) => {
    const s = sessionOf(c)
    const e = d.feeds.explain(c.req.query('ctx') ?? '', s?.did ?? null)
    const raw = c.req.query('post')
    const post = raw && postWebUrl(raw) ? raw : null
    const author = post ? parseAtUri(post)?.did : undefined
    const handle = author ? ((await d.handles?.handles([author]))?.get(author) ?? null) : null
    return page(c, whyPage({ ...chrome(c, 'Why am I seeing this?', 'other', s), explanation: e, post, handle }), e ? 200 : 400)
  })

  const notFound = (c: Context) =>
    page(c, messagePage({ ...chrome(c, 'Page not found', 'other', sessionOf(c)), heading: 'Page not found', message: 'There is no page at this address.' }), 404)

  app.get('/feeds', (c) => {
    const s = sessionOf(c)
    return page(c, feedsPage({ ...chrome(c, 'Feeds', 'feeds', s), feeds: d.feeds.feeds, agents: catalog() }))
  })

  app.get('/agents', (c) => {
    const s = sessionOf(c)
    return page(c, agentsPage({ ...chrome(c, 'Agents', 'agents', s), agents: catalog(true) }))
  })

  // ── signing in ────────────────────────────────────────────────────────

  app.get('/signin', (c) => {
    const next = safeNext(c.req.query('next'))
    const here = new URL(c.req.url)
    // @NOTE a loopback client's callback arrives on 127.0.0.1: start there so the cookies are on the same host
    if (mode.kind === 'loopback' && here.origin !== mode.origin) return c.redirect(`${mode.origin}/signin?${new URLSearchParams({ next })}`, 302)
    const s = sessionOf(c)
    if (s) return c.redirect(next, 302)
    return page(c, signinPage({ ...chrome(c, 'Sign in', 'signin', null), next }))
  })

  app.post('/signin', formLimit, async (c) => {
    const body = await formBody(c)
    if (!csrfOk(c, body)) return refuse(c, null)
    const next = safeNext(body.next)
    const input = (typeof body.handle === 'string' ? body.handle : '').trim().replace(/^@/, '')
    const again = (error: string, status: 400 | 502 = 400) => page(c, signinPage({ ...chrome(c, 'Sign in', 'signin', null), next, error, handle: input }), status)
    if (!input || input.length > 300) return again('Enter your handle (like alice.bsky.social), your DID, or your server’s address.')
    try {
      const url = await client.authorize(input, { state: JSON.stringify({ next }) })
      return c.redirect(url.toString(), 303)
    } catch (err) {
      log.info({ input, err: (err as Error).message }, 'sign-in could not start')
      return again(`Could not sign in as “${input}”: ${(err as Error).message}`)
    }
  })

  app.get('/oauth/callback', async (c) => {
    const params = new URL(c.req.url).searchParams
    let next = '/feeds'
    try {
      const { session, state } = await client.callback(params)
      try {
        next = safeNext((JSON.parse(state ?? '{}') as { next?: string }).next)
      } catch {
        // a state we did not write: go to the catalog
      }
      let handle: string | null = null
      try {
        const id = await client.identityResolver.resolve(session.did)
        handle = id.handle && id.handle !== 'handle.invalid' ? id.handle : null
      } catch (err) {
        log.debug({ did: session.did, err: (err as Error).message }, 'no handle for the signed-in account')
      }
      const id = sessions.create(session.did, handle)
      setCookie(c, names.session, signValue(secret, 'session', id), { path: '/', httpOnly: true, sameSite: 'Lax', secure: names.secure, maxAge: Math.floor(SESSION_TTL_MS / 1000) })
      log.info({ did: session.did }, 'signed in')
      d.feeds.readerSeen(session.did)
      return c.redirect(next, 303)
    } catch (err) {
      const denied = params.get('error') === 'access_denied'
      log.info({ err: (err as Error).message, error: params.get('error') }, 'sign-in failed')
      return page(c, signinPage({ ...chrome(c, 'Sign in', 'signin', null), next, error: denied ? 'You did not allow Skysift to sign you in.' : `Signing in did not complete: ${(err as Error).message}` }), 400)
    }
  })

  app.get('/oauth/client-metadata.json', (c) => {
    if (mode.kind !== 'web') return c.json({ error: 'NotFound', message: 'this server uses a loopback OAuth client' }, 404)
    c.header('cache-control', 'public, max-age=600')
    return c.json(client.clientMetadata)
  })

  app.post('/signout', formLimit, async (c) => {
    const body = await formBody(c)
    const s = sessionOf(c)
    if (!csrfOk(c, body)) return refuse(c, s)
    if (s) {
      const gone = sessions.delete(s.id)
      // the OAuth session (tokens at the reader's server) goes with the last browser session
      if (gone && gone.remaining === 0) await client.revoke(gone.did).catch((err) => log.debug({ err: (err as Error).message }, 'OAuth revoke failed'))
    }
    deleteCookie(c, names.session, { path: '/', secure: names.secure })
    return c.redirect('/feeds', 303)
  })

  // ── settings ──────────────────────────────────────────────────────────

  const feedOf = (rkey: string): Feed | undefined => d.feeds.feeds.find((f) => f.rkey === rkey)
  const signinFirst = (c: Context, path: string) => c.redirect(`/signin?${new URLSearchParams({ next: path })}`, c.req.method === 'GET' ? 302 : 303)

  const postsByUri = (uris: string[]): Map<string, { text: string; author: string; createdAt: number }> => {
    const out = new Map<string, { text: string; author: string; createdAt: number }>()
    for (let i = 0; i < uris.length; i += 200) {
      const chunk = uris.slice(i, i + 200)
      if (!chunk.length) continue
      const rows = d.db.prepare(`SELECT uri, author, text, created_at FROM posts WHERE uri IN (${chunk.map(() => '?').join(',')})`).all(...chunk) as { uri: string; author: string; text: string; created_at: number }[]
      for (const r of rows) out.set(r.uri, { text: r.text, author: r.author, createdAt: r.created_at })
    }
    return out
  }

  const feedbackOf = (feed: Feed, did: string): FeedbackItem[] => {
    const list = d.feeds.feedback(feed, did, FEEDBACK_LIMIT)
    const posts = postsByUri(list.map((f) => f.postUri))
    return list.map((f) => ({ id: f.id, event: f.event, post: f.postUri, at: f.at, undone: f.undone, text: posts.get(f.postUri)?.text ?? null, nudges: f.nudges, feedContext: f.feedContext }))
  }

  const rowsOf = (agents: MixEntry[]): FormRow[] => agents.map((e, i) => ({ index: i, agent: e.agent, weight: e.weight, options: e.options ?? {} }))

  /** Checks each row alone (so every bad row is named at once), then the mix as a whole. */
  const check = (feed: Feed, rows: FormRow[], problems: FieldProblem[]): { entries: MixEntry[]; problems: FieldProblem[] } => {
    const entries = entriesOf(rows)
    const out = [...problems]
    entries.forEach((e, j) => {
      if (typeof rows[j].weight !== 'number') return
      try {
        resolveMix(d.host, [e], [], { keep: false })
      } catch (err) {
        if (!(err instanceof FieldError)) throw err
        out.push(problemOf(err, [rows[j]]))
      }
    })
    if (!out.length) {
      try {
        resolveMix(d.host, entries, feed.base, { keep: false })
      } catch (err) {
        if (!(err instanceof FieldError)) throw err
        out.push(problemOf(err, rows))
      }
    }
    return { entries, problems: out }
  }

  const preview = async (feed: Feed, did: string, entries: MixEntry[]): Promise<PreviewItem[]> => {
    const page = await d.feeds.previewMix(feed, did, entries, PREVIEW_LIMIT)
    const posts = postsByUri(page.feed.map((i) => i.post))
    // an unsaved mix is unknown to FeedService.explain: explain with the entries at hand (so reasons name the keywords etc.)
    const mix = resolveMix(d.host, entries, feed.base, { keep: false })
    const describe = (label: string) => {
      const e = mix.entries.find((x) => x.label === label)
      const id = e?.inst.def.id ?? label.replace(/#\d+$/, '')
      const def = d.host.agents.get(id)
      return def ? { agent: id, title: def.title, options: e?.inst.rawOptions } : null
    }
    const handles = (await d.handles?.handles(page.feed.flatMap((i) => posts.get(i.post)?.author ?? []))) ?? new Map<string, string>()
    return page.feed.map((i) => {
      const p = posts.get(i.post)
      const a = decodeFeedContext(i.feedContext)
      const author = p?.author ?? null
      return { post: i.post, feedContext: i.feedContext, text: p?.text ?? null, author, handle: (author && handles.get(author)) ?? null, createdAt: p?.createdAt ?? null, why: a ? explain(a, describe) : null }
    })
  }

  const FLASH: Record<string, string> = {
    private: 'Saved privately. Your feed now uses this mix.',
    reset: 'Your private mix is forgotten. Your public record (if any) or the feed’s default applies.',
    undone: 'Feedback undone.',
  }
  const flashOf = (c: Context, did: string): string | null => {
    const saved = c.req.query('saved') ?? c.req.query('done')
    if (saved === 'record') {
      const uri = c.req.query('uri')
      const ok = uri && uri.startsWith(`at://${did}/${MIX_COLLECTION}/`) && /^[A-Za-z0-9:/._~-]+$/.test(uri)
      return `Saved as a public record${ok ? ` (${uri})` : ''}. Skysift applies it once it reads it from the network — unless you keep a private mix here, which wins.`
    }
    return saved ? (FLASH[saved] ?? null) : null
  }

  const renderSettings = (c: Context, feed: Feed, s: WebSession, m: { rows?: FormRow[]; draft?: boolean; problems?: FieldProblem[]; preview?: PreviewItem[] | null; flash?: string | null }, status: 200 | 400 | 429 | 502 = 200) => {
    const current = d.feeds.viewMix(feed, s.did)
    return page(
      c,
      settingsPage({
        ...chrome(c, `Your mix for ${feed.displayName}`, 'settings', s),
        feed,
        agents: catalog(),
        current,
        rows: m.rows ?? rowsOf(current.agents),
        draft: m.draft ?? false,
        problems: m.problems ?? [],
        flash: m.flash === undefined ? flashOf(c, s.did) : m.flash,
        preview: m.preview ?? null,
        feedback: feedbackOf(feed, s.did),
      }),
      status,
    )
  }

  app.get('/feeds/:rkey/settings', (c) => {
    const feed = feedOf(c.req.param('rkey'))
    const s = sessionOf(c)
    if (!feed) return page(c, messagePage({ ...chrome(c, 'Unknown feed', 'other', s), heading: 'Unknown feed', message: 'This server hosts no feed by that name.' }), 404)
    if (!s) return signinFirst(c, c.req.path)
    return renderSettings(c, feed, s, {})
  })

  app.post('/feeds/:rkey/settings', formLimit, async (c) => {
    const feed = feedOf(c.req.param('rkey'))
    const s = sessionOf(c)
    const body = await formBody(c)
    if (!feed) return page(c, messagePage({ ...chrome(c, 'Unknown feed', 'other', s), heading: 'Unknown feed', message: 'This server hosts no feed by that name.' }), 404)
    if (!csrfOk(c, body)) return refuse(c, s)
    if (!s) return signinFirst(c, `/feeds/${feed.rkey}/settings`)
    const back = `/feeds/${feed.rkey}/settings`
    const partial = c.req.header('x-skysift-partial') === '1'
    const op = typeof body.op === 'string' ? body.op : 'preview'
    const forms = new Map(catalog().map((a) => [a.status.id, a.form]))
    const { rows, problems: formProblems } = readMixForm(body, (id) => forms.get(id) ?? null)

    if (op === 'reset') {
      d.feeds.deleteMix(feed, s.did)
      return c.redirect(`${back}?saved=reset`, 303)
    }
    if (op === 'add') {
      const agent = typeof body.add === 'string' ? body.add : ''
      if (forms.has(agent)) rows.push({ index: rows.reduce((m, r) => Math.max(m, r.index + 1), 0), agent, weight: 50, options: {} })
      return renderSettings(c, feed, s, { rows, draft: true, flash: forms.has(agent) ? `Added ${agent}. Set its weight, then preview or save.` : null })
    }
    if (op.startsWith('remove:')) {
      const i = Number(op.slice('remove:'.length))
      const kept = rows.filter((r) => r.index !== i)
      return renderSettings(c, feed, s, { rows: kept, draft: true, flash: kept.length < rows.length ? 'Agent removed. Preview or save to keep the change.' : null })
    }

    const checked = check(feed, rows, formProblems)
    const failed = (problems: FieldProblem[], status: 400 | 429 | 502 = 400) => {
      if (partial) {
        const rendered = renderedFields(rows, new Map(catalog().map((a) => [a.status.id, a])))
        return c.json({ ok: false, problems: problems.map((p) => ({ field: fieldForProblem(p.field, rendered), message: p.message })) }, status)
      }
      return renderSettings(c, feed, s, { rows, draft: true, problems }, status)
    }
    if (checked.problems.length) return failed(checked.problems)
    const entries = checked.entries

    try {
      if (op === 'preview') {
        const items = await preview(feed, s.did, entries)
        if (partial) return c.json({ ok: true, count: items.length, html: String(await previewList(items)) })
        return renderSettings(c, feed, s, { rows, draft: true, preview: items, flash: `Preview ready: ${items.length} post${items.length === 1 ? '' : 's'}. Nothing is saved yet.` })
      }
      if (op === 'save') {
        await d.feeds.putMix(feed, s.did, entries)
        log.info({ did: s.did, feed: feed.rkey }, 'mix saved from the web')
        return c.redirect(`${back}?saved=private`, 303)
      }
      if (op === 'publish') {
        const mix = resolveMix(d.host, entries, feed.base)
        let uri: string
        try {
          const session = await client.restore(s.did)
          const agent = new Agent(session)
          const res = await agent.com.atproto.repo.createRecord({
            repo: s.did,
            collection: MIX_COLLECTION,
            // the reader's server does not know our lexicon
            validate: false,
            record: { $type: MIX_COLLECTION, feed: feed.uri, agents: mix.agents, createdAt: new Date().toISOString() },
          })
          uri = res.data.uri
        } catch (err) {
          log.info({ did: s.did, err: (err as Error).message }, 'could not write a mix record')
          return failed([{ field: 'form', message: `Could not write the record to your repository (${(err as Error).message}). Sign out and in again, then retry.` }], 502)
        }
        log.info({ did: s.did, feed: feed.rkey, uri }, 'mix record written from the web')
        return c.redirect(`${back}?${new URLSearchParams({ saved: 'record', uri })}`, 303)
      }
    } catch (err) {
      if (err instanceof FieldError) return failed([problemOf(err, rows)])
      if (err instanceof QueueFullError) return failed([{ field: 'form', message: 'Too many previews are being made right now. Try again in a moment.' }], 429)
      throw err
    }
    return failed([{ field: 'form', message: `Unknown action ${op}` }])
  })

  app.post('/feeds/:rkey/feedback/:id/undo', formLimit, async (c) => {
    const feed = feedOf(c.req.param('rkey'))
    const s = sessionOf(c)
    const body = await formBody(c)
    if (!feed) return page(c, messagePage({ ...chrome(c, 'Unknown feed', 'other', s), heading: 'Unknown feed', message: 'This server hosts no feed by that name.' }), 404)
    if (!csrfOk(c, body)) return refuse(c, s)
    if (!s) return signinFirst(c, `/feeds/${feed.rkey}/settings`)
    const id = Number(c.req.param('id'))
    const undone = Number.isSafeInteger(id) ? d.feeds.undoFeedback(s.did, id) : null
    return c.redirect(`/feeds/${feed.rkey}/settings${undone ? '?done=undone' : ''}#feedback-h`, 303)
  })

  return {
    app,
    notFound,
    oauth: client,
    mode,
    close() {
      clearInterval(pruner)
      closeOAuth()
    },
  }
}

/**
 * Subscriber web pages without a browser: catalog pages, sign-in redirects,
 * CSRF refusals, and the settings form (save, preview, add/remove, errors
 * next to their fields, feedback undo) for a session made directly in
 * SQLite (no OAuth round trip). Real SQLite and Redis.
 */
import path from 'node:path'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import type { FeedService } from '../src/feed/service.ts'
import { createServeApp } from '../src/runtime.ts'
import { createWeb } from '../src/serve/web/index.ts'
import { sessionCookieFor } from '../src/serve/web/session.ts'
import { PostReader } from '../src/store/posts.ts'
import { WebSessionStore } from '../src/store/web-sessions.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { UsageRepository } from '../src/store/usage.ts'
import { UsageCounter } from '../src/feed/usage.ts'
import { postEvent } from './support/builders.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'

const PORT = 47_311
const PUBLIC = `http://localhost:${PORT}`
const LOOPBACK = `http://127.0.0.1:${PORT}`
const READER = 'did:plc:webreaderwebreaderwebread'
const OTHER = 'did:plc:webotherwebotherwebotherw'
const author = 'did:plc:webauthorwebauthorwebauth'

/** A tiny cookie jar: what a browser would send back. */
class Jar {
  private readonly cookies = new Map<string, string>()
  constructor(initial?: string) {
    if (initial) this.add(initial)
  }
  add(pair: string) {
    const [kv] = pair.split(';')
    const i = kv.indexOf('=')
    const v = kv.slice(i + 1)
    if (v === '') this.cookies.delete(kv.slice(0, i))
    else this.cookies.set(kv.slice(0, i), v)
  }
  take(res: Response) {
    for (const c of res.headers.getSetCookie()) this.add(c)
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }
}

const csrfIn = (html: string): string => {
  const m = /name="_csrf" value="([^"]+)"/.exec(html)
  if (!m) throw new Error('no CSRF token on the page')
  return m[1]
}

describe('web pages for subscribers', () => {
  let ctx: AppContext
  let app: Hono
  let feeds: FeedService
  const cleanups: (() => unknown)[] = []
  const posts = {
    telescope: postEvent({ author, text: 'The telescope saw a new comet tonight', minutesAgo: 50 }),
    cats: postEvent({ author, text: 'my cat knocked the plant over again', minutesAgo: 30 }),
    space: postEvent({ author, text: 'space weather update: a mild solar storm', minutesAgo: 5 }),
  }

  beforeAll(() => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    ctx = new AppContext(
      testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, port: PORT, publicUrl: PUBLIC, allowInsecureHttp: true, cacheTtlMs: 60_000 }),
      silentLogger,
    )
    const served = createServeApp(ctx)
    app = served.app
    feeds = served.feeds
    cleanups.push(() => ctx.close(), served.close)
    new BatchWriter(ctx.db.sqlite).write({ id: 'seed', events: Object.values(posts), scores: [], eventTime: Date.now() })
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const fresh = () => ctx.feeds.find((f) => f.rkey === 'fresh')!
  const signedIn = (did = READER) => new Jar(sessionCookieFor(new WebSessionStore(ctx.db.sqlite), PUBLIC, did, { handle: 'reader.test' }))
  const get = async (url: string, jar?: Jar) => {
    const res = await app.request(`${LOOPBACK}${url}`, { headers: jar ? { cookie: jar.header() } : {} })
    jar?.take(res)
    return { res, status: res.status, text: await res.text() }
  }
  const post = async (url: string, jar: Jar | null, form: Record<string, string | string[]>, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams()
    for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x)
    const res = await app.request(`${LOOPBACK}${url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: LOOPBACK, ...(jar ? { cookie: jar.header() } : {}), ...headers },
      body,
    })
    jar?.take(res)
    return { res, status: res.status, location: res.headers.get('location'), text: await res.text() }
  }
  /** the settings page, and the CSRF token its forms carry */
  const settings = async (jar: Jar, rkey = 'fresh') => {
    const r = await get(`/feeds/${rkey}/settings`, jar)
    expect(r.status, r.text.slice(0, 300)).toBe(200)
    return { ...r, csrf: csrfIn(r.text) }
  }

  it('shows the hosted feeds with their default mixes, and the agent catalog', async () => {
    const r = await get('/feeds')
    expect(r.status).toBe(200)
    expect(r.res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(r.res.headers.get('content-security-policy')).toContain("script-src 'self'")
    for (const f of ctx.feeds) {
      expect(r.text).toContain(f.displayName.replace('&', '&amp;'))
      expect(r.text).toContain(`href="/feeds/${f.rkey}/settings"`)
    }
    expect(r.text).toContain('Default mix')
    expect(r.text).toContain('href="/agents#agent-recency"')
    expect(r.text).toContain('Why this post?')
    expect(r.text).toContain('href="/signin"')
    expect(r.text).not.toMatch(/<script>(?!<\/script>)/) // no inline scripts (CSP)

    const a = await get('/agents')
    expect(a.status).toBe(200)
    for (const agent of ctx.host.describe()) {
      expect(a.text).toContain(`id="agent-${agent.id}"`)
      expect(a.text).toContain(agent.title)
    }
    expect(a.text).toContain('<dt>Kind</dt><dd>builtin</dd>')
    expect(a.text).toContain('<dt>Used in</dt>')
    expect(a.text).toContain('<code>halfLifeHours</code>')

    const js = await get('/static/skysift.js')
    expect(js.status).toBe(200)
    expect(js.res.headers.get('content-type')).toMatch(/javascript/)
    expect((await get('/static/skysift.css')).status).toBe(200)
  })

  it('sends signed-out readers to sign in, on the loopback origin the OAuth callback uses', async () => {
    const s = await get('/feeds/fresh/settings')
    expect(s.status).toBe(302)
    expect(s.res.headers.get('location')).toBe('/signin?next=%2Ffeeds%2Ffresh%2Fsettings')

    const viaLocalhost = await app.request(`${PUBLIC}/signin?next=%2Ffeeds%2Ffresh%2Fsettings`)
    expect(viaLocalhost.status).toBe(302)
    expect(viaLocalhost.headers.get('location')).toBe(`${LOOPBACK}/signin?next=%2Ffeeds%2Ffresh%2Fsettings`)

    const page = await get('/signin?next=%2Ffeeds%2Ffresh%2Fsettings')
    expect(page.status).toBe(200)
    expect(page.text).toContain('<label for="handle">')
    expect(page.text).toContain('name="next" value="/feeds/fresh/settings"')
    // an outside "next" is never followed
    expect((await get('/signin?next=//evil.example/x')).text).toContain('name="next" value="/feeds"')
    // loopback clients have no metadata document
    expect((await get('/oauth/client-metadata.json')).status).toBe(404)
    // unknown feed
    expect((await get('/feeds/nope/settings', signedIn())).status).toBe(404)
  })

  it('serves a client metadata document when the public URL is https', async () => {
    const web = createWeb({
      feeds,
      host: ctx.host,
      usage: new UsageCounter(new UsageRepository(ctx.db.sqlite), ctx.feeds),
      sessions: new WebSessionStore(ctx.db.sqlite),
      posts: new PostReader(ctx.db.sqlite),
      log: silentLogger,
      version: 'test',
      serviceDid: 'did:web:feeds.example.org',
      publicUrl: 'https://feeds.example.org',
      oauth: { publicUrl: 'https://feeds.example.org', port: 443, plcUrl: 'https://plc.directory', allowHttp: false },
    })
    try {
      const res = await web.app.request('https://feeds.example.org/oauth/client-metadata.json')
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({
        client_id: 'https://feeds.example.org/oauth/client-metadata.json',
        redirect_uris: ['https://feeds.example.org/oauth/callback'],
        scope: 'atproto transition:generic',
        application_type: 'web',
        dpop_bound_access_tokens: true,
      })
      // cookies are __Host- prefixed and Secure over https
      const page = await web.app.request('https://feeds.example.org/signin')
      expect(page.headers.get('set-cookie')).toMatch(/^__Host-skysift_csrf=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Lax/)
    } finally {
      web.close()
    }
  })

  it('refuses POSTs without the form token, with a wrong one, or from another site', async () => {
    const jar = signedIn()
    const { csrf } = await settings(jar)
    const form = { op: 'save', 'agents.0.agent': 'recency', 'agents.0.weight': '40' }

    const none = await post('/feeds/fresh/settings', jar, form)
    expect(none.status).toBe(403)
    expect(none.text).toContain('This form has expired')
    const wrong = await post('/feeds/fresh/settings', jar, { ...form, _csrf: `${csrf.split('.')[0]}.forged` })
    expect(wrong.status).toBe(403)
    const crossSite = await post('/feeds/fresh/settings', jar, { ...form, _csrf: csrf }, { origin: 'https://evil.example' })
    expect(crossSite.status).toBe(403)
    // a token from another browser (another CSRF cookie) does not fit this one
    const elsewhere = signedIn()
    const theirs = (await settings(elsewhere)).csrf
    expect((await post('/feeds/fresh/settings', jar, { ...form, _csrf: theirs })).status).toBe(403)
    expect(await post('/signout', jar, {})).toMatchObject({ status: 403 })
    expect(feeds.viewMix(fresh(), READER).source).toBe('default')
  })

  it('saves a mix from the form for the signed-in reader (post, redirect, get)', async () => {
    const jar = signedIn()
    const page = await settings(jar)
    expect(page.text).toContain('data-source="default"')
    // the form starts from the current mix: the feed default
    expect(page.text).toContain('name="agents.0.agent" value="recency"')
    expect(page.text).toContain('name="agents.1.agent" value="engagement"')

    const saved = await post('/feeds/fresh/settings', jar, {
      _csrf: page.csrf,
      op: 'save',
      'agents.0.agent': 'keyword',
      'agents.0.weight': '80',
      'agents.0.options.include': 'telescope, comet',
      'agents.0.options.exclude': '',
      'agents.0.options.requireMatch.set': '1',
      'agents.3.agent': 'recency',
      'agents.3.weight': '-20',
      'agents.3.options.halfLifeHours': '12',
      // rows added in the browser may carry any index up to 9999
      'agents.1500.agent': 'post-type',
      'agents.1500.weight': '0',
      'agents.1500.options.replies': 'keep',
      'agents.1500.options.quotes': '',
      'agents.1500.options.keepThreads.set': '1',
      'agents.1500.options.keepThreads': 'true',
    })
    expect(saved.status, saved.text.slice(0, 500)).toBe(303)
    expect(saved.location).toBe('/feeds/fresh/settings?saved=private')

    const view = feeds.viewMix(fresh(), READER)
    expect(view.source).toBe('private')
    expect(view.agents).toEqual([
      { agent: 'keyword', weight: 80, options: { include: ['telescope', 'comet'] } },
      { agent: 'recency', weight: -20, options: { halfLifeHours: 12 } },
      { agent: 'post-type', weight: 0, options: { replies: 'keep' } },
    ])
    // the reader's feed follows: the telescope post leads
    expect(feeds.skeleton(fresh(), READER, 10).feed[0].post).toBe(posts.telescope.uri)
    // someone else still has the default
    expect(feeds.viewMix(fresh(), OTHER).source).toBe('default')

    const after = await get(saved.location!, jar)
    expect(after.text).toContain('Saved privately')
    expect(after.text).toContain('data-source="private"')
    expect(after.text).toContain('name="agents.0.options.include" value="telescope, comet"')
    expect(after.text).toContain('id="reset-button"')

    // forgetting it returns to the default
    const reset = await post('/feeds/fresh/settings', jar, { _csrf: csrfIn(after.text), op: 'reset' })
    expect(reset.location).toBe('/feeds/fresh/settings?saved=reset')
    expect(feeds.viewMix(fresh(), READER).source).toBe('default')
  })

  it('shows validation errors next to the fields they name, keeping what the reader typed', async () => {
    const jar = signedIn()
    const { csrf } = await settings(jar)
    const r = await post('/feeds/fresh/settings', jar, {
      _csrf: csrf,
      op: 'save',
      'agents.0.agent': 'keyword',
      'agents.0.weight': '50',
      'agents.0.options.include': `ok, ${'x'.repeat(101)}`,
      'agents.2.agent': 'language',
      'agents.2.weight': '10',
      'agents.2.options.langs': '',
      'agents.5.agent': 'recency',
      'agents.5.weight': 'lots',
      'agents.6.agent': 'media',
      'agents.6.weight': '20',
      'agents.6.options.kinds.set': '1',
    })
    expect(r.status).toBe(400)
    // each error sits right after its field, the field points at it
    expect(r.text).toMatch(
      /id="f-agents-0-options-include"[^>]*aria-invalid="true"[^>]*\/><p class="field-error" id="err-agents-0-options-include" data-error-for="agents.0.options.include">[^<]*100/,
    )
    expect(r.text).toMatch(/aria-describedby="f-agents-0-options-include-fmt err-agents-0-options-include"/)
    expect(r.text).toMatch(/<p class="field-error" id="err-agents-2-options-langs" data-error-for="agents.2.options.langs">/)
    expect(r.text).toMatch(/<p class="field-error" id="err-agents-5-weight" data-error-for="agents.5.weight">a whole number/)
    expect(r.text).toMatch(/<p class="field-error" id="err-agents-6-options-kinds" data-error-for="agents.6.options.kinds">/)
    // the summary links to them
    expect(r.text).toContain('href="#f-agents-0-options-include"')
    expect(r.text).toContain('role="alert"')
    // what was typed is kept, and nothing was saved
    expect(r.text).toContain('name="agents.5.weight"')
    expect(r.text).toContain('value="lots"')
    expect(feeds.viewMix(fresh(), READER).source).toBe('default')

    // a mix-level problem (too many agents) lands on the form
    const many: Record<string, string> = { _csrf: csrf, op: 'save' }
    for (let i = 0; i < 17; i++) Object.assign(many, { [`agents.${i}.agent`]: 'recency', [`agents.${i}.weight`]: '1' })
    const tooMany = await post('/feeds/fresh/settings', jar, many)
    expect(tooMany.status).toBe(400)
    expect(tooMany.text).toMatch(/<p class="field-error" id="err-agents" data-error-for="agents">at most 16 agents/)

    // the enhancing script gets the same problems as JSON, named by field
    const partial = await post(
      '/feeds/fresh/settings',
      jar,
      { _csrf: csrf, op: 'preview', 'agents.7.agent': 'language', 'agents.7.weight': '5' },
      { 'x-skysift-partial': '1' },
    )
    expect(partial.status).toBe(400)
    expect(JSON.parse(partial.text)).toMatchObject({ ok: false, problems: [{ field: 'agents.7.options.langs' }] })
  })

  it('previews a mix with post text and why, without saving; adds and removes rows without JavaScript', async () => {
    const jar = signedIn()
    const { csrf } = await settings(jar)
    const mix = {
      'agents.0.agent': 'keyword',
      'agents.0.weight': '90',
      'agents.0.options.include': 'cat',
      'agents.1.agent': 'recency',
      'agents.1.weight': '10',
    }
    const r = await post('/feeds/fresh/settings', jar, { _csrf: csrf, op: 'preview', ...mix })
    expect(r.status).toBe(200)
    expect(r.text).toContain('Preview ready: 3 posts')
    const list = r.text.slice(r.text.indexOf('<ol class="posts">'))
    expect(list.indexOf(posts.cats.text)).toBeGreaterThan(0)
    expect(list.indexOf(posts.cats.text)).toBeLessThan(list.indexOf(posts.space.text))
    expect(list).toContain('Shown because: Keywords “cat” (+90)')
    expect(list).toMatch(/href="\/why\?ctx=v1%7C[^"]+&amp;post=at%3A%2F%2F/)
    expect(feeds.viewMix(fresh(), READER).source).toBe('default')

    const partial = await post('/feeds/fresh/settings', jar, { _csrf: csrf, op: 'preview', ...mix }, { 'x-skysift-partial': '1' })
    const body = JSON.parse(partial.text)
    expect(body).toMatchObject({ ok: true, count: 3 })
    expect(body.html).toContain(posts.cats.text)

    const added = await post('/feeds/fresh/settings', jar, { _csrf: csrf, op: 'add', add: 'hashtags', ...mix })
    expect(added.status).toBe(200)
    expect(added.text).toContain('name="agents.2.agent" value="hashtags"')
    expect(added.text).toContain('(unsaved changes)')
    const removed = await post('/feeds/fresh/settings', jar, { _csrf: csrf, op: 'remove:0', ...mix })
    expect(removed.text).not.toContain('name="agents.0.agent"')
    expect(removed.text).toContain('name="agents.1.agent" value="recency"')
  })

  it("lists the reader's feedback with its nudges, and undoes one", async () => {
    const feed = fresh()
    const jar = signedIn(OTHER)
    const items = feeds.skeleton(feed, OTHER, 10).feed
    const target = items.find((i) => i.post === posts.space.uri)!
    expect(feeds.addFeedback(OTHER, [{ postUri: target.post, event: 'more', feedContext: target.feedContext, reqId: null }])).toBe(1)
    const [fb] = feeds.feedback(feed, OTHER)

    const page = await settings(jar)
    expect(page.text).toContain(`id="feedback-${fb.id}"`)
    expect(page.text).toContain('Show more')
    expect(page.text).toContain(posts.space.text)
    expect(page.text).toMatch(/nudged Recency \+5/)
    expect(page.text).toContain('From your feedback')

    const undo = await post(`/feeds/fresh/feedback/${fb.id}/undo`, jar, { _csrf: page.csrf })
    expect(undo.status).toBe(303)
    expect(undo.location).toBe('/feeds/fresh/settings?done=undone#feedback-h')
    expect(feeds.feedback(feed, OTHER)[0]).toMatchObject({ id: fb.id, undone: true })
    const after = await get('/feeds/fresh/settings?done=undone', jar)
    expect(after.text).toContain('Feedback undone.')
    expect(after.text).toContain('(undone)')
    // someone else cannot undo it (nothing happens)
    const stranger = signedIn(READER)
    const theirs = await settings(stranger)
    await post(`/feeds/fresh/feedback/${fb.id}/undo`, stranger, { _csrf: theirs.csrf })
  })

  it('cannot write a public record without an OAuth session, and says so next to the form', async () => {
    const jar = signedIn()
    const { csrf } = await settings(jar)
    const r = await post('/feeds/fresh/settings', jar, { _csrf: csrf, op: 'publish', 'agents.0.agent': 'recency', 'agents.0.weight': '40' })
    expect(r.status).toBe(502)
    expect(r.text).toMatch(/<p class="field-error" id="err-form" data-error-for="form">Could not write the record/)
  })

  it('signs out: the session cookie stops working', async () => {
    const jar = signedIn()
    const { csrf } = await settings(jar)
    const out = await post('/signout', jar, { _csrf: csrf })
    expect(out.status).toBe(303)
    expect(out.location).toBe('/feeds')
    expect((await get('/feeds/fresh/settings', jar)).status).toBe(302)
    // even the old cookie value, replayed, is dead
    const replay = signedIn()
    const replayed = replay.header()
    const { csrf: c2 } = await settings(replay)
    await post('/signout', replay, { _csrf: c2 })
    const res = await app.request(`${LOOPBACK}/feeds/fresh/settings`, { headers: { cookie: replayed } })
    expect(res.status).toBe(302)
  })
})

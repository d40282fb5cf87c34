/**
 * The subscriber web pages in a real browser (Chromium via playwright-core)
 * against Skysift on a real port, with a local AT Protocol network (PLC +
 * PDS + AppView from @atproto/dev-env):
 *
 *   Chromium ──▶ Skysift /signin ──▶ PDS OAuth sign-in + "Authorize" pages ──▶ /oauth/callback
 *   Chromium ──▶ settings: agents, weights, options → preview → save privately / as a record
 *   PDS firehose ──▶ ingest ─▶ score ─▶ store ─▶ SQLite (carol's posts, alice's mix record)
 *
 * Needs /usr/bin/chromium (Debian: apt-get install chromium), PostgreSQL and Redis.
 * Screenshots are written under the OS temp dir (printed), never into the repo.
 * Run: npx vitest run test/e2e/web.e2e.test.ts   (SKYSIFT_E2E_LOG=debug for Skysift's logs)
 */
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { Config } from '../../src/config.ts'
import type { AppContext } from '../../src/context.ts'
import type { Feed } from '../../src/feeds.ts'
import { cookieNames, sessionCookieFor } from '../../src/serve/web/session.ts'
import { WebSessionStore } from '../../src/store/web-sessions.ts'
import { CHROMIUM_PATH, haveChromium, launchBrowser, pngSize, type TestBrowser } from './support/browser.ts'
import { type LocalNetwork, type LocalUser, startLocalNetwork } from './support/network.ts'
import { type LocalSkysift, startLocalSkysift } from './support/skysift.ts'

const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const GET_MIX = 'app.skysift.feed.getMix'
const SEND = 'app.bsky.feed.sendInteractions'
const MIX = 'app.skysift.feed.mix'
const MIN = 60_000
const STEP_TIMEOUT = 180_000

/** Carol's posts, by age. "fresh" ranks newest first by default. */
const POSTS = {
  lunch: { text: 'Lunch by the river with old friends', ageMs: 1 * MIN },
  scope: { text: 'Saturn tonight through the telescope, rings and all', ageMs: 20 * MIN },
  bread: { text: 'Baked sourdough bread for the first time', ageMs: 40 * MIN },
} as const
type PostKey = keyof typeof POSTS

/** What alice picks in the browser: telescope talk first, then a little recency. */
const ALICE_MIX = [
  { agent: 'recency', weight: 10, options: { halfLifeHours: 3 } },
  { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
]

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

describe('subscriber web pages in Chromium, signed in with atproto OAuth on a dev-env PDS', () => {
  let net: LocalNetwork
  let ctx: AppContext
  let sky: LocalSkysift
  let serve: LocalSkysift['serve']
  let shotsDir: string
  let serviceDid: string
  let alice: LocalUser, bob: LocalUser, carol: LocalUser
  let fresh: Feed
  let browser: TestBrowser
  let page: Page
  const keyOf = new Map<string, PostKey>()
  const failures: string[] = []

  /** one of our XRPC methods, with a token the user's PDS minted for it */
  async function call(user: LocalUser, nsid: string, opts: { query?: Record<string, string>; input?: unknown } = {}) {
    const token = await net.getServiceAuth(user, serviceDid, nsid)
    const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : ''
    const res = await fetch(`${serve.url}/xrpc/${nsid}${qs}`, {
      method: opts.input === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(opts.input === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(opts.input === undefined ? {} : { body: JSON.stringify(opts.input) }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, any> }
  }

  async function skeleton(user: LocalUser): Promise<{ keys: string[]; items: { post: string; feedContext: string }[] }> {
    const r = await call(user, SKELETON, { query: { feed: fresh.uri, limit: '30' } })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    const items = r.body.feed as { post: string; feedContext: string }[]
    return { keys: items.map((i) => keyOf.get(i.post) ?? i.post), items }
  }

  /** Saves what the browser shows when a step fails (for the report), then rethrows. */
  async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      const file = path.join(shotsDir, `failed-${name}.png`)
      await page?.screenshot({ path: file, fullPage: true }).catch(() => {})
      await writeFile(path.join(shotsDir, `failed-${name}.html`), (await page?.content().catch(() => '')) ?? '').catch(() => {})
      failures.push(file)
      throw err
    }
  }

  const settingsUrl = () => `${serve.url}/feeds/${fresh.rkey}/settings`

  beforeAll(async () => {
    if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (Debian: apt-get install -y chromium) or set SKYSIFT_CHROMIUM`)
    shotsDir = path.join(os.tmpdir(), 'skysift-web-screenshots', new Date().toISOString().replace(/[:.]/g, '-'))
    await mkdir(shotsDir, { recursive: true })
    net = await startLocalNetwork()
    alice = await net.createUser('webalice')
    bob = await net.createUser('webbob')
    carol = await net.createUser('webcarol')

    // handles like alice.test resolve through the dev-env PDS (no DNS for .test); no feed records are needed here
    sky = await startLocalSkysift(net, alice, { publish: false, config: { oauthHandleResolver: net.pdsUrl } as Partial<Config> })
    ctx = sky.ctx
    serve = sky.serve
    serviceDid = sky.serviceDid
    fresh = ctx.feeds.find((f) => f.rkey === 'fresh')!

    const t0 = Date.now()
    for (const [k, p] of Object.entries(POSTS) as [PostKey, (typeof POSTS)[PostKey]][]) {
      const r = await carol.agent.post({ text: p.text, langs: ['en'], createdAt: new Date(t0 - p.ageMs).toISOString() })
      keyOf.set(r.uri, k)
    }
    await until("carol's posts in SQLite", () => {
      const have = new Set(ctx.db.sqlite.prepare('SELECT uri FROM posts WHERE author = ?').pluck().all(carol.did) as string[])
      return [...keyOf.keys()].every((u) => have.has(u))
    })

    browser = await launchBrowser()
    page = browser.page
    page.setDefaultTimeout(20_000)
  }, STEP_TIMEOUT)

  afterAll(async () => {
    const errors: unknown[] = []
    await browser?.close().catch((e) => errors.push(e))
    await sky?.stop().catch((e) => errors.push(e))
    await net?.close().catch((e) => errors.push(e))
    console.log(`web e2e screenshots: ${shotsDir}${failures.length ? ` (failures: ${failures.join(', ')})` : ''}`)
    if (errors.length) throw errors[0]
  }, STEP_TIMEOUT)

  it(
    'renders the catalog page (screenshot)',
    async () => {
      await step('catalog', async () => {
        await page.goto(`${serve.url}/feeds`)
        expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Feeds you can shape')
        for (const f of ctx.feeds) expect(await page.getByRole('heading', { name: f.displayName }).count()).toBe(1)
        expect(await page.getByRole('link', { name: /Choose your mix/ }).count()).toBe(ctx.feeds.length)
        const png = await page.screenshot({ fullPage: true })
        const size = pngSize(png)
        expect(png.length).toBeGreaterThan(10 * 1024)
        expect(size.width).toBe(1200)
        expect(size.height).toBeGreaterThan(600)
        await writeFile(path.join(shotsDir, 'catalog.png'), png)

        await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Agents' }).click()
        await page.waitForURL(/\/agents$/)
        expect(await page.getByRole('heading', { name: /Keywords/ }).count()).toBe(1)
        await writeFile(path.join(shotsDir, 'agents.png'), await page.screenshot({ fullPage: false }))
      })
    },
    STEP_TIMEOUT,
  )

  it(
    "signs alice in through her PDS's OAuth sign-in and Authorize pages",
    async () => {
      await step('signin', async () => {
        await page.goto(settingsUrl())
        // signed out: sent to sign in, on the loopback origin the OAuth redirect comes back to
        await page.waitForURL(/\/signin\?next=%2Ffeeds%2Ffresh%2Fsettings$/)
        await page.getByLabel('Your handle or DID').fill(alice.handle)
        await page.getByRole('button', { name: 'Sign in' }).click()
        // the PDS's own pages
        const pdsPort = new URL(net.pdsUrl).port
        await page.waitForURL((u) => u.port === pdsPort && u.pathname === '/oauth/authorize')
        await page.getByLabel('Password', { exact: true }).fill(alice.password)
        await page.getByRole('button', { name: 'Sign in' }).click()
        await page.getByRole('button', { name: 'Authorize' }).click()
        await page.waitForURL((u) => u.href.startsWith(settingsUrl()))
        expect(await page.locator('.account').innerText()).toContain(`Signed in as @${alice.handle}`)
        expect(await page.locator('[data-source]').getAttribute('data-source')).toBe('default')
        // the OAuth session is stored for her DID (tokens and DPoP key), the browser holds only a signed session id
        expect(ctx.db.sqlite.prepare('SELECT count(*) FROM oauth_sessions WHERE did = ?').pluck().get(alice.did)).toBe(1)
        const cookies = await browser.context.cookies(serve.url)
        const session = cookies.find((c) => c.name === cookieNames(ctx.config.publicUrl).session)!
        expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax' })
        expect(session.value).not.toContain(alice.did)
      })
    },
    STEP_TIMEOUT,
  )

  it(
    'picks agents and weights, previews, and saves privately: getMix and her feed follow',
    async () => {
      await step('save-private', async () => {
        const before = await skeleton(alice)
        expect(before.keys).toEqual(['lunch', 'scope', 'bread'])

        // drop engagement (in place, by script)
        await page.getByRole('button', { name: 'Remove Engagement velocity' }).click()
        expect(await page.locator('fieldset.agent-row').count()).toBe(1)
        await expect(page.locator('#status').innerText()).resolves.toContain('Removed Engagement velocity')
        // recency down to 10, with the keyboard
        const recency = page.getByLabel('Weight for Recency')
        await recency.focus()
        for (let i = 0; i < 60; i++) await page.keyboard.press('ArrowLeft')
        expect(await recency.inputValue()).toBe('10')
        expect(await page.locator('fieldset.agent-row output').first().innerText()).toBe('+10')
        // add "keyword", full weight, looking for "telescope"
        await page.getByLabel('Add an agent').selectOption('keyword')
        await page.getByRole('button', { name: 'Add', exact: true }).click()
        const keywordWeight = page.getByLabel('Weight for Keywords')
        await expect(keywordWeight.evaluate((el) => el === document.activeElement)).resolves.toBe(true)
        await page.keyboard.press('End')
        expect(await keywordWeight.inputValue()).toBe('100')

        // a bad option is named next to its field by the live preview
        const include = page.getByLabel('Include', { exact: true })
        await include.fill(`telescope, ${'x'.repeat(101)}`)
        const err = page.locator('p.field-error[data-error-for$=".options.include"]')
        await err.waitFor()
        expect(await err.innerText()).toMatch(/100/)
        expect(await include.getAttribute('aria-invalid')).toBe('true')
        expect(await include.getAttribute('aria-describedby')).toContain(await err.getAttribute('id'))

        await include.fill('telescope')
        await page.locator('#preview-button').click()
        const first = page.locator('#preview ol.posts > li').first()
        await until('the preview to lead with the telescope post', async () => (await first.innerText()).includes(POSTS.scope.text), 20_000)
        expect(await err.count()).toBe(0)
        expect(await page.locator('#preview ol.posts > li').count()).toBe(3)
        expect(await first.innerText()).toMatch(/Shown because: Keywords “telescope” \(\+100\)/)
        expect(await first.getByRole('link', { name: /Why this post\?/ }).getAttribute('href')).toMatch(/^\/why\?ctx=v1%7C/)
        // the author as readers know them (the handle checks out both ways), and the post on bsky.app
        expect(await first.innerText()).toContain(`@${carol.handle}`)
        expect(await first.getByRole('link', { name: 'Open on Bluesky' }).getAttribute('href')).toMatch(
          new RegExp(`^https://bsky\\.app/profile/${carol.did}/post/`),
        )
        expect(await page.locator('#status').innerText()).toContain('Preview updated: 3 posts')
        await writeFile(path.join(shotsDir, 'settings-preview.png'), await page.screenshot({ fullPage: true }))
        // nothing saved by a preview
        expect(ctx.db.sqlite.prepare('SELECT count(*) FROM mixes WHERE subscriber = ?').pluck().get(alice.did)).toBe(0)

        await page.getByRole('button', { name: 'Save privately' }).click()
        await page.waitForURL(/\?saved=private$/)
        expect(await page.locator('#status').innerText()).toContain('Saved privately')
        expect(await page.locator('[data-source]').getAttribute('data-source')).toBe('private')

        // stored for her DID, as getMix says too
        const view = serve.feeds.viewMix(fresh, alice.did)
        expect(view).toMatchObject({ source: 'private', agents: ALICE_MIX })
        const got = await call(alice, GET_MIX, { query: { feed: fresh.uri } })
        expect(got.body).toMatchObject({ source: 'private', agents: ALICE_MIX, fingerprint: view.fingerprint })
        // and her feed changed; bob's did not
        const after = await until('her feed to follow the new mix', async () => {
          const s = await skeleton(alice)
          return s.keys[0] === 'scope' ? s : undefined
        })
        expect(after.keys).toEqual(['scope', 'lunch', 'bread'])
        expect(after.items[0].feedContext.split('|')[1]).toBe(view.fingerprint)
        expect((await skeleton(bob)).keys).toEqual(['lunch', 'scope', 'bread'])
      })
    },
    STEP_TIMEOUT,
  )

  it(
    'saves the mix as a public record in her repository; with the private mix gone, getMix reports the record',
    async () => {
      await step('save-record', async () => {
        await page.getByRole('button', { name: 'Save as public record' }).click()
        await page.waitForURL(/\?saved=record&uri=/)
        const status = await page.locator('#status').innerText()
        expect(status).toContain('Saved as a public record')
        const uri = /\((at:\/\/[^)]+)\)/.exec(status)![1]
        expect(uri.startsWith(`at://${alice.did}/${MIX}/`)).toBe(true)

        // in her repo on the PDS, written through her OAuth session
        const listed = await alice.agent.com.atproto.repo.listRecords({ repo: alice.did, collection: MIX })
        expect(listed.data.records).toHaveLength(1)
        expect(listed.data.records[0].uri).toBe(uri)
        expect(listed.data.records[0].value).toMatchObject({ $type: MIX, feed: fresh.uri, agents: ALICE_MIX })
        expect(Date.parse((listed.data.records[0].value as { createdAt: string }).createdAt)).toBeGreaterThan(Date.now() - 5 * MIN)

        // the private mix still wins until she forgets it
        expect(serve.feeds.viewMix(fresh, alice.did).source).toBe('private')
        await until(
          'the record to be read from the firehose',
          () => ctx.db.sqlite.prepare('SELECT count(*) FROM mix_records WHERE author = ?').pluck().get(alice.did) === 1,
        )
        await page.getByRole('button', { name: 'Forget my private mix' }).click()
        await page.waitForURL(/\?saved=reset$/)
        expect(await page.locator('[data-source]').getAttribute('data-source')).toBe('record')
        expect(serve.feeds.viewMix(fresh, alice.did)).toMatchObject({ source: 'record', agents: ALICE_MIX })
        const got = await call(alice, GET_MIX, { query: { feed: fresh.uri } })
        expect(got.body).toMatchObject({ source: 'record', agents: ALICE_MIX })
        expect((await skeleton(alice)).keys).toEqual(['scope', 'lunch', 'bread'])
      })
    },
    STEP_TIMEOUT,
  )

  it(
    'lists her feedback with its nudges and undoes it',
    async () => {
      await step('undo', async () => {
        const { items } = await skeleton(alice)
        const top = items[0]
        const sent = await call(alice, SEND, {
          input: { interactions: [{ item: top.post, event: 'app.bsky.feed.defs#requestLess', feedContext: top.feedContext }] },
        })
        expect(sent.status, JSON.stringify(sent.body)).toBe(200)
        const [fb] = serve.feeds.feedback(fresh, alice.did)
        expect(fb).toMatchObject({ postUri: top.post, event: 'less', undone: false })

        await page.goto(settingsUrl())
        const row = page.locator(`#feedback-${fb.id}`)
        expect(await row.innerText()).toMatch(/Show less\s+on “Saturn tonight through the telescope/)
        expect(await row.innerText()).toMatch(/nudged .*Keywords −5/)
        // the nudge shows on her current mix too
        expect(await page.locator('table.mix').first().innerText()).toMatch(/−5 → \+95/)

        // "why was it shown": the explanation page for that item, with what her keyword agent looked for
        await row.getByRole('link', { name: 'Why was it shown?' }).click()
        await page.waitForURL(/\/why\?ctx=/)
        expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Why am I seeing this?')
        expect(await page.locator('main').innerText()).toMatch(/Keywords “telescope” \(\+100\)/)
        await page.goBack()

        await row.getByRole('button', { name: /^Undo show less/ }).click()
        await page.waitForURL(/\?done=undone#feedback-h$/)
        expect(await page.locator('#status').innerText()).toBe('Feedback undone.')
        expect(await page.locator(`#feedback-${fb.id}`).innerText()).toContain('(undone)')
        expect(serve.feeds.feedback(fresh, alice.did)[0]).toMatchObject({ id: fb.id, undone: true })
        expect(serve.feeds.viewMix(fresh, alice.did).nudges).toEqual([0, 0])
      })
    },
    STEP_TIMEOUT,
  )

  it(
    'works without JavaScript: plain forms post and redirect back (session made directly for bob)',
    async () => {
      const b = await launchBrowser({ javaScriptEnabled: false })
      try {
        const p = b.page
        p.setDefaultTimeout(20_000)
        const [name, value] = sessionCookieFor(new WebSessionStore(ctx.db.sqlite), ctx.config.publicUrl, bob.did, { handle: bob.handle }).split('=')
        await b.context.addCookies([{ name, value, url: serve.url, httpOnly: true, sameSite: 'Lax' }])
        await p.goto(settingsUrl())
        expect(await p.locator('.account').innerText()).toContain(`@${bob.handle}`)
        // add a row: a round trip that renders the draft
        await p.getByLabel('Add an agent').selectOption('keyword')
        await p.getByRole('button', { name: 'Add', exact: true }).click()
        await p.waitForLoadState()
        expect(await p.getByRole('heading', { name: /unsaved changes/ }).count()).toBe(1)
        await p.getByLabel('Include', { exact: true }).fill('lunch')
        await p.getByLabel('Weight for Keywords').fill('-100')
        await p.locator('#preview-button').click()
        await p.waitForLoadState()
        const items = await p.locator('#preview ol.posts > li').allInnerTexts()
        expect(items).toHaveLength(3)
        expect(items[2]).toContain(POSTS.lunch.text)
        await p.getByRole('button', { name: 'Save privately' }).click()
        await p.waitForURL(/\?saved=private$/)
        expect(serve.feeds.viewMix(fresh, bob.did)).toMatchObject({
          source: 'private',
          agents: [{ agent: 'recency' }, { agent: 'engagement' }, { agent: 'keyword', weight: -100, options: { include: ['lunch'] } }],
        })
        expect((await skeleton(bob)).keys).toEqual(['scope', 'bread', 'lunch'])
      } finally {
        await b.close()
      }
    },
    STEP_TIMEOUT,
  )

  it(
    'signs out',
    async () => {
      await step('signout', async () => {
        await page.goto(`${serve.url}/feeds`)
        await page.getByRole('button', { name: 'Sign out' }).click()
        await page.waitForURL(/\/feeds$/)
        expect(await page.getByRole('link', { name: 'Sign in' }).count()).toBe(1)
        await page.goto(settingsUrl())
        await page.waitForURL(/\/signin/)
        // her last browser session ended, so the OAuth session was revoked and forgotten
        expect(ctx.db.sqlite.prepare('SELECT count(*) FROM oauth_sessions WHERE did = ?').pluck().get(alice.did)).toBe(0)
      })
    },
    STEP_TIMEOUT,
  )
})

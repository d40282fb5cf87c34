/**
 * The server's pages in a real Chromium: `/`, `/why`, `/feeds`, `/agents`
 * and `/admin` (signed in with the admin token through its form) share one
 * stylesheet and one top bar, and are screenshotted into a folder under the
 * temp dir for a person to look at; the queue board makes no request outside
 * this server; a browser gets an HTML 404 page and a favicon, while XRPC
 * paths keep XRPC errors.
 *
 * Needs /usr/bin/chromium (Debian: apt-get install chromium) and Redis.
 */
import { mkdir } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppContext } from '../../src/context.ts'
import { silentLogger } from '../../src/logger.ts'
import { startServe, type Running } from '../../src/runtime.ts'
import { BatchWriter } from '../../src/store/writer.ts'
import { postEvent } from '../support/builders.ts'
import { queuePrefix, tempDir, testConfig } from '../support/resources.ts'
import { CHROMIUM_PATH, haveChromium, launchBrowser, pngSize, type TestBrowser } from './support/browser.ts'

const TOKEN = 'pages-admin-token-0123456789'
const AUTHOR = 'did:plc:pagespagespagespagespagesp'

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

describe('web pages in Chromium', () => {
  const cleanups: (() => unknown)[] = []
  let ctx: AppContext
  let serve: Running & { url: string }
  let browser: TestBrowser
  let shotsDir: string
  let origin: string
  let item: { post: string; feedContext: string }

  beforeAll(async () => {
    if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (Debian: apt-get install -y chromium) or set SKYSIFT_CHROMIUM`)
    shotsDir = path.join(os.tmpdir(), 'skysift-page-screenshots', new Date().toISOString().replace(/[:.]/g, '-'))
    await mkdir(shotsDir, { recursive: true })
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const port = await freePort()
    origin = `http://127.0.0.1:${port}`
    ctx = new AppContext(
      testConfig({
        port,
        host: '127.0.0.1',
        publicUrl: origin,
        serviceDid: 'did:web:feeds.test',
        dbPath: path.join(t.dir, 'skysift.db'),
        queuePrefix: q.prefix,
        adminToken: TOKEN,
        metricsToken: undefined,
      }),
      silentLogger,
    )
    cleanups.push(() => ctx.close())
    new BatchWriter(ctx.db.sqlite).write({
      id: 'b1',
      events: Array.from({ length: 12 }, (_, i) =>
        postEvent({ author: AUTHOR, minutesAgo: i * 7 + 1, text: `Telescope night ${i}: the rings of Saturn, clear as a drawing` }),
      ),
      scores: [],
      eventTime: Date.now(),
    })
    serve = await startServe(ctx)
    cleanups.push(() => serve.stop())
    const feedUri = ctx.feeds.find((f) => f.rkey === 'fresh')!.uri
    const body = (await (await fetch(`${serve.url}/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(feedUri)}&limit=5`)).json()) as {
      feed: { post: string; feedContext: string }[]
    }
    item = body.feed[0]
    browser = await launchBrowser({ viewport: { width: 1100, height: 800 } })
    cleanups.push(() => browser.close())
  }, 120_000)
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('/, /why, /feeds, /agents and /admin share one stylesheet and top bar', async () => {
    const { page } = browser
    // sign in to the admin pages the way an operator does
    await page.goto(`${origin}/admin`)
    expect(new URL(page.url()).pathname).toBe('/admin/login')
    await page.fill('#token', TOKEN)
    await Promise.all([page.waitForURL(`${origin}/admin`), page.click('button[type=submit]')])

    const pages: [string, string][] = [
      ['home', '/'],
      ['why', `/why?${new URLSearchParams({ ctx: item.feedContext, post: item.post })}`],
      ['feeds', '/feeds'],
      ['agents', '/agents'],
      ['admin', '/admin'],
    ]
    const looks: Record<string, unknown>[] = []
    for (const [name, p] of pages) {
      const res = await page.goto(`${origin}${p}`)
      expect(res?.status(), p).toBe(200)
      const look = await page.evaluate(() => {
        const top = document.querySelector('header.top')
        const css = getComputedStyle(document.documentElement)
        return {
          stylesheet: !!document.querySelector('link[rel=stylesheet][href="/static/skysift.css"]'),
          icon: document.querySelector('link[rel=icon]')?.getAttribute('href'),
          brand: document.querySelector('header.top a.brand')?.getAttribute('href'),
          nav: Array.from(document.querySelectorAll('header.top nav a'))
            .map((a) => a.getAttribute('href'))
            .slice(0, 2),
          topBackground: top ? getComputedStyle(top).backgroundColor : null,
          font: css.fontFamily,
          color: css.color,
        }
      })
      expect(look, p).toEqual({
        stylesheet: true,
        icon: '/favicon.svg',
        brand: '/',
        nav: ['/feeds', '/agents'],
        topBackground: looks[0]?.topBackground ?? look.topBackground,
        font: looks[0]?.font ?? look.font,
        color: looks[0]?.color ?? look.color,
      })
      looks.push(look)
      const png = await page.screenshot({ path: path.join(shotsDir, `${name}.png`), fullPage: true })
      expect(pngSize(png).width).toBe(1100)
    }
    expect(looks).toHaveLength(5)
  })

  it('the landing page shows options in words, and /why links back to the post on Bluesky', async () => {
    const { page } = browser
    await page.goto(`${origin}/`)
    const text = await page.locator('main').innerText()
    expect(text).not.toMatch(/[{}]/)
    expect(text).toContain('halfLifeHours: 3')
    await page.goto(`${origin}/why?${new URLSearchParams({ ctx: item.feedContext, post: item.post })}`)
    const rkey = item.post.split('/').pop()
    const href = await page.getByRole('link', { name: 'Open the post on Bluesky' }).getAttribute('href')
    expect(href).toBe(`https://bsky.app/profile/${AUTHOR}/post/${rkey}`)
    expect(await page.locator('main').innerText()).toMatch(/Shown because: /)
  })

  it('the queue board loads and renders with no request outside this server', async () => {
    const { page, context } = browser
    const requests: string[] = []
    const record = (r: { url(): string }) => requests.push(r.url())
    context.on('request', record)
    try {
      await page.goto(`${origin}/admin/queues`, { waitUntil: 'networkidle' })
      await page.getByText('refresh', { exact: false }).first().waitFor({ timeout: 20_000 })
      await page.screenshot({ path: path.join(shotsDir, 'queues.png'), fullPage: true })
    } finally {
      context.off('request', record)
    }
    expect(requests.length).toBeGreaterThan(3)
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'))).toEqual([])
  })

  it('a browser gets an HTML 404 page and a favicon; XRPC paths keep XRPC errors', async () => {
    const { page } = browser
    const res = await page.goto(`${origin}/no/such/page`)
    expect(res?.status()).toBe(404)
    expect(res?.headers()['content-type']).toContain('text/html')
    expect(await page.locator('h1').innerText()).toBe('Page not found')
    expect(await page.locator('header.top nav a[href="/feeds"]').count()).toBe(1)
    await page.screenshot({ path: path.join(shotsDir, 'not-found.png'), fullPage: true })

    const icon = await page.goto(`${origin}/favicon.ico`)
    expect(icon?.status()).toBe(200)
    expect(icon?.headers()['content-type']).toBe('image/svg+xml')
    expect(await icon?.text()).toContain('<svg')

    const xrpc = await fetch(`${origin}/xrpc/app.bsky.feed.getNothing`, { headers: { accept: 'text/html' } })
    expect(xrpc.status).toBe(404)
    expect(await xrpc.json()).toEqual({ error: 'MethodNotImplemented', message: 'Method Not Implemented' })
    const other = await fetch(`${origin}/no/such/page`)
    expect(other.status).toBe(404)
    expect(await other.json()).toEqual({ error: 'NotFound', message: 'Not Found' })
  })
})

import type { Hono } from 'hono'
import { parseAtUri } from '../../../util/at-ids.ts'
import { agentsPage, feedsPage, homePage, postWebUrl, whyPage } from '../views.ts'
import type { PageKit } from './kit.ts'

/** The pages anyone may read: home, the feeds, the agents, and why a post is in a feed. */
export function browsePages(app: Hono, k: PageKit): void {
  app.get('/', (c) => {
    const s = k.cookies.sessionOf(c)
    return k.page(c, homePage({ ...k.chrome(c, 'Feeds where you choose the algorithm', 'home', s), feeds: k.feeds.feeds, agents: k.catalog() }))
  })

  app.get('/why', async (c) => {
    const s = k.cookies.sessionOf(c)
    const e = k.feeds.explain(c.req.query('ctx') ?? '', s?.did ?? null)
    const raw = c.req.query('post')
    const post = raw && postWebUrl(raw) ? raw : null
    const author = post ? parseAtUri(post)?.did : undefined
    const handle = author ? ((await k.handles?.handles([author]))?.get(author) ?? null) : null
    return k.page(c, whyPage({ ...k.chrome(c, 'Why am I seeing this?', 'other', s), explanation: e, post, handle }), e ? 200 : 400)
  })

  app.get('/feeds', (c) => {
    const s = k.cookies.sessionOf(c)
    return k.page(c, feedsPage({ ...k.chrome(c, 'Feeds', 'feeds', s), feeds: k.feeds.feeds, agents: k.catalog() }))
  })

  app.get('/agents', (c) => {
    const s = k.cookies.sessionOf(c)
    return k.page(c, agentsPage({ ...k.chrome(c, 'Agents', 'agents', s), agents: k.catalog(true) }))
  })
}

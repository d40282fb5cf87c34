import type { Hono } from 'hono'
import { safeNext } from '../session.ts'
import { signinPage } from '../views.ts'
import type { PageKit } from './kit.ts'

/** Signing in with atproto OAuth (the form, the callback, the client metadata document) and signing out. */
export function signinPages(app: Hono, k: PageKit): void {
  const { client, mode } = k.oauth
  const log = k.log

  app.get('/signin', (c) => {
    const next = safeNext(c.req.query('next'))
    const here = new URL(c.req.url)
    // @NOTE a loopback client's callback arrives on 127.0.0.1: start there so the cookies are on the same host
    if (mode.kind === 'loopback' && here.origin !== mode.origin) return c.redirect(`${mode.origin}/signin?${new URLSearchParams({ next })}`, 302)
    const s = k.cookies.sessionOf(c)
    if (s) return c.redirect(next, 302)
    return k.page(c, signinPage({ ...k.chrome(c, 'Sign in', 'signin', null), next }))
  })

  app.post('/signin', k.formLimit, async (c) => {
    const body = await k.formBody(c)
    if (!k.cookies.csrfOk(c, body)) return k.refuse(c, null)
    const next = safeNext(body.next)
    const input = (typeof body.handle === 'string' ? body.handle : '').trim().replace(/^@/, '')
    const again = (error: string, status: 400 | 502 = 400) =>
      k.page(c, signinPage({ ...k.chrome(c, 'Sign in', 'signin', null), next, error, handle: input }), status)
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
      k.cookies.signIn(c, session.did, handle)
      log.info({ did: session.did }, 'signed in')
      k.feeds.readerSeen(session.did)
      return c.redirect(next, 303)
    } catch (err) {
      const denied = params.get('error') === 'access_denied'
      log.info({ err: (err as Error).message, error: params.get('error') }, 'sign-in failed')
      return k.page(
        c,
        signinPage({
          ...k.chrome(c, 'Sign in', 'signin', null),
          next,
          error: denied ? 'You did not allow Skysift to sign you in.' : `Signing in did not complete: ${(err as Error).message}`,
        }),
        400,
      )
    }
  })

  app.get('/oauth/client-metadata.json', (c) => {
    if (mode.kind !== 'web') return c.json({ error: 'NotFound', message: 'this server uses a loopback OAuth client' }, 404)
    c.header('cache-control', 'public, max-age=600')
    return c.json(client.clientMetadata)
  })

  app.post('/signout', k.formLimit, async (c) => {
    const body = await k.formBody(c)
    const s = k.cookies.sessionOf(c)
    if (!k.cookies.csrfOk(c, body)) return k.refuse(c, s)
    const gone = k.cookies.signOut(c, s?.id ?? null)
    // the OAuth session (tokens at the reader's server) goes with the last browser session
    if (gone && gone.remaining === 0) await client.revoke(gone.did).catch((err) => log.debug({ err: (err as Error).message }, 'OAuth revoke failed'))
    return c.redirect('/feeds', 303)
  })
}

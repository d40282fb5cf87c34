import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { FormBody } from './forms.ts'
import type { WebSession, WebSessions } from './ports.ts'

/** The cookies' names: `__Host-` prefixed (Secure, whole host) when served over https. */
export function cookieNames(publicUrl: string): { session: string; csrf: string; secure: boolean } {
  const secure = new URL(publicUrl).protocol === 'https:'
  return secure ? { session: '__Host-skysift_session', csrf: '__Host-skysift_csrf', secure } : { session: 'skysift_session', csrf: 'skysift_csrf', secure }
}

/** HMAC-signs a value for a cookie: `<value>.<signature>`. */
export function signValue(secret: string, purpose: string, value: string): string {
  return `${value}.${createHmac('sha256', secret).update(`${purpose}\n${value}`).digest('base64url')}`
}

/** The value of a signed cookie, or null when the signature does not match. */
export function unsignValue(secret: string, purpose: string, signed: string | undefined): string | null {
  if (!signed) return null
  const dot = signed.lastIndexOf('.')
  if (dot <= 0) return null
  const value = signed.slice(0, dot)
  const want = Buffer.from(signValue(secret, purpose, value).slice(dot + 1))
  const got = Buffer.from(signed.slice(dot + 1))
  return want.length === got.length && timingSafeEqual(want, got) ? value : null
}

/**
 * A signed-in browser session for `did` without the OAuth round trip (tests,
 * tools): the `Cookie` header value that carries it.
 */
export function sessionCookieFor(sessions: WebSessions, publicUrl: string, did: string, opts: { handle?: string; secret?: string } = {}): string {
  const secret = sessions.cookieSecret(opts.secret)
  const id = sessions.create(did, opts.handle ?? null)
  return `${cookieNames(publicUrl).session}=${signValue(secret, 'session', id)}`
}

/** A relative path to return to after signing in (never another origin). */
export function safeNext(v: unknown): string {
  return typeof v === 'string' && /^\/(?![/\\])[^\s]*$/.test(v) && v.length < 500 ? v : '/feeds'
}

/** The session and CSRF cookies of the pages. */
export interface Cookies {
  /** the signed-in session the request carries, if any */
  sessionOf(c: Context): (WebSession & { id: string }) | null
  /** starts a session for `did` and sets its cookie */
  signIn(c: Context, did: string, handle: string | null): void
  /** ends the request's session (the cookie goes in any case); says how many sessions that DID still has */
  signOut(c: Context, id: string | null): { did: string; remaining: number } | null
  /** the CSRF token for forms on this page (setting the cookie it is checked against when missing) */
  csrfOf(c: Context): string
  /** refuses cross-site POSTs: the form's token must match the cookie, and a sent Origin must be ours */
  csrfOk(c: Context, body: FormBody): boolean
}

/** The cookies over a session store, signed with `secret`. */
export function cookies(sessions: WebSessions, secret: string, publicUrl: string): Cookies {
  const names = cookieNames(publicUrl)
  const publicOrigin = new URL(publicUrl).origin
  return {
    sessionOf(c) {
      const id = unsignValue(secret, 'session', getCookie(c, names.session))
      if (!id) return null
      const s = sessions.get(id)
      return s ? { ...s, id } : null
    },
    signIn(c, did, handle) {
      const id = sessions.create(did, handle)
      setCookie(c, names.session, signValue(secret, 'session', id), {
        path: '/',
        httpOnly: true,
        sameSite: 'Lax',
        secure: names.secure,
        maxAge: Math.floor(sessions.sessionTtlMs / 1000),
      })
    },
    signOut(c, id) {
      const gone = id ? sessions.delete(id) : null
      deleteCookie(c, names.session, { path: '/', secure: names.secure })
      return gone
    },
    csrfOf(c) {
      let nonce = getCookie(c, names.csrf)
      if (!nonce || !/^[A-Za-z0-9_-]{32,64}$/.test(nonce)) {
        nonce = randomBytes(24).toString('base64url')
        setCookie(c, names.csrf, nonce, { path: '/', httpOnly: true, sameSite: 'Lax', secure: names.secure })
      }
      return signValue(secret, 'csrf', nonce)
    },
    csrfOk(c, body) {
      const origin = c.req.header('origin')
      if (origin && origin !== new URL(c.req.url).origin && origin !== publicOrigin) return false
      if (c.req.header('sec-fetch-site') === 'cross-site') return false
      const nonce = getCookie(c, names.csrf)
      const token = typeof body._csrf === 'string' ? body._csrf : c.req.header('x-csrf-token')
      return !!nonce && unsignValue(secret, 'csrf', token) === nonce
    },
  }
}

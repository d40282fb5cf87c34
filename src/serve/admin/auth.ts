import { createHmac, timingSafeEqual } from 'node:crypto'
import { Hono, type Context, type Next } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { bodyLimit } from 'hono/body-limit'
import type { Logger } from '../../logger.ts'
import { XrpcError } from '../errors.ts'

/** Constant-time comparison of a presented secret with the configured one. */
export function secretMatches(given: string, token: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Constant-time check of `Authorization: Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header?.trim() ?? '')
  return m ? secretMatches(m[1], token) : false
}

/** The admin session cookie: `<expiry ms>.<HMAC-SHA256 of it, keyed with the admin token>`. */
export const ADMIN_COOKIE = 'skysift_admin'
export const ADMIN_SESSION_MS = 12 * 3_600_000

const sessionMac = (token: string, exp: number) => createHmac('sha256', token).update(`skysift-admin-session-v1|${exp}`).digest('base64url')

/** A signed session value that expires at `exp` (ms since the epoch). */
export function signAdminSession(token: string, exp: number): string {
  return `${exp}.${sessionMac(token, exp)}`
}

/** True for an unexpired session value signed with this token. */
export function verifyAdminSession(token: string, value: string | undefined, now = Date.now()): boolean {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value ?? '')
  if (!m) return false
  const exp = Number(m[1])
  if (!(exp > now) || exp > now + ADMIN_SESSION_MS + 60_000) return false
  const a = Buffer.from(m[2])
  const b = Buffer.from(sessionMac(token, exp))
  return a.length === b.length && timingSafeEqual(a, b)
}

/** How a request proved it is the admin, if it did. */
export function adminAuth(c: Context, token: string): 'bearer' | 'cookie' | null {
  if (bearerMatches(c.req.header('authorization'), token)) return 'bearer'
  if (verifyAdminSession(token, getCookie(c, ADMIN_COOKIE))) return 'cookie'
  return null
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** A cookie-authenticated change must come from our own pages (SameSite=Strict already keeps other sites out). */
function sameOrigin(c: Context, publicUrl: string | undefined): boolean {
  const origin = c.req.header('origin')
  if (!origin) return true
  const own = new Set([new URL(c.req.url).origin])
  if (publicUrl) own.add(new URL(publicUrl).origin)
  return own.has(origin)
}

/**
 * Admin access: `Authorization: Bearer <SKYSIFT_ADMIN_TOKEN>` or the signed
 * session cookie the sign-in form sets. Without either, APIs answer 401 and
 * pages (`mode: 'page'`, GET) redirect to the sign-in form.
 */
export function requireAdmin(token: string, opts: { mode?: 'api' | 'page'; publicUrl?: string } = {}) {
  return async (c: Context, next: Next) => {
    const how = adminAuth(c, token)
    if (how === 'cookie' && !SAFE_METHODS.has(c.req.method) && !sameOrigin(c, opts.publicUrl)) {
      throw new XrpcError(403, 'Forbidden', 'cross-origin admin request refused')
    }
    if (!how) {
      if (opts.mode === 'page' && (c.req.method === 'GET' || c.req.method === 'HEAD')) {
        const target = c.req.path + (new URL(c.req.url).search || '')
        return c.redirect(`/admin/login?next=${encodeURIComponent(target)}`, 302)
      }
      throw new XrpcError(401, 'AuthRequired', 'admin token required')
    }
    c.header('Cache-Control', 'no-store')
    await next()
  }
}

/** Only our own admin pages are valid places to go after signing in. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/admin(\/[A-Za-z0-9._~%/-]*)?(\?[^\s]*)?$/.test(next) && !next.includes('//') ? next : '/admin'
}

export interface AdminPageDeps {
  token: string
  publicUrl: string
  log: Logger
  /** renders the sign-in form (error: why the last attempt failed) */
  signInPage: (p: { next: string; error?: string }) => string | Promise<string>
}

/**
 * The sign-in form (POST token → HttpOnly, SameSite=Strict cookie, Secure
 * on https, HMAC-signed, 12 h) and sign-out. Mount at /admin.
 */
export function adminSessionRoutes(d: AdminPageDeps): Hono {
  const app = new Hono()
  const secure = d.publicUrl.startsWith('https:')
  app.get('/login', async (c) => {
    c.header('Cache-Control', 'no-store')
    if (adminAuth(c, d.token)) return c.redirect(safeNext(c.req.query('next')), 302)
    return c.html(await d.signInPage({ next: safeNext(c.req.query('next')) }))
  })
  app.post('/login', bodyLimit({ maxSize: 8 * 1024, onError: (c) => c.text('request body too large', 413) }), async (c) => {
    c.header('Cache-Control', 'no-store')
    const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>)
    const next = safeNext(body.next)
    const given = typeof body.token === 'string' ? body.token.trim() : ''
    if (!secretMatches(given, d.token)) {
      d.log.warn({ path: '/admin/login' }, 'admin sign-in refused')
      // a failed attempt costs the caller a moment (the token is long; this only slows scripted guessing further)
      await new Promise((r) => setTimeout(r, 300))
      return c.html(await d.signInPage({ next, error: 'That is not the admin token.' }), 401)
    }
    const exp = Date.now() + ADMIN_SESSION_MS
    setCookie(c, ADMIN_COOKIE, signAdminSession(d.token, exp), {
      httpOnly: true,
      secure,
      sameSite: 'Strict',
      path: '/admin',
      maxAge: Math.floor(ADMIN_SESSION_MS / 1000),
    })
    d.log.info('admin signed in')
    return c.redirect(next, 303)
  })
  app.post('/logout', (c) => {
    deleteCookie(c, ADMIN_COOKIE, { path: '/admin', secure, httpOnly: true, sameSite: 'Strict' })
    return c.redirect('/admin/login', 303)
  })
  return app
}

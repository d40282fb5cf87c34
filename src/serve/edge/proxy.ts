import type { Context } from 'hono'
import type { Logger } from '../../logger.ts'

/** How long the primary has to answer a proxied request (headers and body). */
export const PROXY_TIMEOUT_MS = 30_000
/** The largest request body passed on (the primary's largest input, an agent upload, is 300 KiB). */
export const PROXY_MAX_BODY = 1024 * 1024

/** Headers that belong to one connection (RFC 9110 §7.6.1), or that fetch sets itself, never passed on. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  // fetch asks for and undoes compression itself: the body it hands over is plain
  'accept-encoding',
  'content-encoding',
])

/** Marks a request an edge passed on: an edge refuses to pass on one that already carries it (a primary URL naming an edge). */
export const PROXIED_HEADER = 'x-skysift-proxied'

const xrpcError = (status: 502 | 503 | 508 | 413, error: string, message: string) =>
  new Response(JSON.stringify({ error, message }), { status, headers: { 'content-type': 'application/json' } })

/**
 * A handler passing a request on to the primary (`primaryUrl`): method, path, query, body (up to
 * PROXY_MAX_BODY) and headers (but hop-by-hop ones), with redirects and cookies handed back as they come.
 * Unreachable, or too slow (PROXY_TIMEOUT_MS): a 502; without a primary: a 503; both as XRPC errors.
 */
export function proxyTo(primaryUrl: string | undefined, log: Logger, opts: { timeoutMs?: number; maxBody?: number } = {}) {
  const timeoutMs = opts.timeoutMs ?? PROXY_TIMEOUT_MS
  const maxBody = opts.maxBody ?? PROXY_MAX_BODY
  return async (c: Context): Promise<Response> => {
    if (!primaryUrl) {
      return xrpcError(
        503,
        'PrimaryNotConfigured',
        `this edge node serves feed skeletons only; ${c.req.method} ${c.req.path} needs the primary, and SKYSIFT_PRIMARY_URL is not set`,
      )
    }
    const req = c.req.raw
    if (req.headers.has(PROXIED_HEADER)) {
      return xrpcError(508, 'ProxyLoop', 'SKYSIFT_PRIMARY_URL of an edge node names an edge node, not the primary: the request came back')
    }
    const url = new URL(req.url)
    const target = `${primaryUrl}${url.pathname}${url.search}`
    const headers = new Headers()
    req.headers.forEach((value, name) => {
      if (!HOP.has(name)) headers.append(name, value)
    })
    headers.set(PROXIED_HEADER, '1')
    let body: ArrayBuffer | undefined
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const declared = Number(req.headers.get('content-length') ?? 0)
      if (declared > maxBody) return xrpcError(413, 'PayloadTooLarge', `request body over ${maxBody / 1024} KiB`)
      body = await readBounded(req, maxBody)
      if (!body) return xrpcError(413, 'PayloadTooLarge', `request body over ${maxBody / 1024} KiB`)
    }
    let res: Response
    try {
      res = await fetch(target, { method: req.method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      const e = err as Error
      const timedOut = e.name === 'TimeoutError'
      log.warn({ path: url.pathname, err: (e.cause as Error | undefined)?.message ?? e.message, timedOut }, 'primary did not answer')
      return xrpcError(
        502,
        'PrimaryUnavailable',
        timedOut
          ? `the primary did not answer within ${timeoutMs / 1000} s; try again later`
          : 'the primary is unreachable from this edge node; try again later',
      )
    }
    const out = new Headers()
    res.headers.forEach((value, name) => {
      if (!HOP.has(name) && name !== 'set-cookie') out.append(name, value)
    })
    for (const cookie of res.headers.getSetCookie()) out.append('set-cookie', cookie)
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: out })
  }
}

/** A request's body, or undefined when it is longer than `max` bytes (read no further than that). */
async function readBounded(req: Request, max: number): Promise<ArrayBuffer | undefined> {
  if (!req.body) return new ArrayBuffer(0)
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength
    if (size > max) return undefined
    chunks.push(chunk)
  }
  const all = new Uint8Array(size)
  let at = 0
  for (const ch of chunks) {
    all.set(ch, at)
    at += ch.byteLength
  }
  return all.buffer
}

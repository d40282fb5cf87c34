/**
 * Outgoing HTTP to addresses an author or a network record names (remote
 * agents, labelers, PDSes): a fetch that refuses loopback, private and other
 * non-public addresses (checked on the very address it connects to), never
 * follows redirects, and a body reader with a size cap.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import http from 'node:http'
import https from 'node:https'
import { isIP, type LookupFunction } from 'node:net'
import { Readable } from 'node:stream'

/** Resolves a host name to addresses (default: the system resolver via `dns.lookup`). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>

/** A connection refused by the SSRF guard. Thrown before any connection is made. */
export class SsrfError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SsrfError'
  }
}

// ---------------------------------------------------------------------------
// address classification

function parseIPv4(s: string): number | null {
  const parts = s.split('.')
  if (parts.length !== 4) return null
  let n = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null
    const v = Number(p)
    if (v > 255) return null
    n = n * 256 + v
  }
  return n
}

function parseIPv6(input: string): number[] | null {
  let s = input
  const zone = s.indexOf('%')
  if (zone >= 0) s = s.slice(0, zone)
  const lastColon = s.lastIndexOf(':')
  if (lastColon < 0) return null
  const tail = s.slice(lastColon + 1)
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail)
    if (v4 === null) return null
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`
  }
  let groups: string[]
  const dbl = s.indexOf('::')
  if (dbl >= 0) {
    const head = s.slice(0, dbl).split(':').filter(Boolean)
    const rest = s
      .slice(dbl + 2)
      .split(':')
      .filter(Boolean)
    const fill = 8 - head.length - rest.length
    if (fill < 1) return null
    groups = [...head, ...new Array<string>(fill).fill('0'), ...rest]
  } else {
    groups = s.split(':')
  }
  if (groups.length !== 8) return null
  const out: number[] = []
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null
    out.push(parseInt(g, 16))
  }
  return out
}

const V4_BLOCKED: [string, number, string][] = [
  ['0.0.0.0', 8, '"this network" (0.0.0.0/8)'],
  ['10.0.0.0', 8, 'private (10.0.0.0/8)'],
  ['100.64.0.0', 10, 'carrier-grade NAT (100.64.0.0/10)'],
  ['127.0.0.0', 8, 'loopback (127.0.0.0/8)'],
  ['169.254.0.0', 16, 'link-local (169.254.0.0/16)'],
  ['172.16.0.0', 12, 'private (172.16.0.0/12)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (192.0.0.0/24)'],
  ['192.0.2.0', 24, 'documentation (192.0.2.0/24)'],
  ['192.88.99.0', 24, '6to4 relay anycast (192.88.99.0/24)'],
  ['192.168.0.0', 16, 'private (192.168.0.0/16)'],
  ['198.18.0.0', 15, 'benchmarking (198.18.0.0/15)'],
  ['198.51.100.0', 24, 'documentation (198.51.100.0/24)'],
  ['203.0.113.0', 24, 'documentation (203.0.113.0/24)'],
  ['224.0.0.0', 4, 'multicast (224.0.0.0/4)'],
  ['240.0.0.0', 4, 'reserved or broadcast (240.0.0.0/4)'],
]
const V4_RANGES = V4_BLOCKED.map(([base, bits, why]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  return { net: (parseIPv4(base)! & mask) >>> 0, mask, why }
})

function v4Reason(n: number): string | null {
  for (const r of V4_RANGES) if ((n & r.mask) >>> 0 === r.net) return r.why
  return null
}

function v6Reason(h: number[]): string | null {
  const zeros = (from: number, to: number) => h.slice(from, to).every((x) => x === 0)
  const v4 = (hi: number, lo: number) => ((hi << 16) >>> 0) + lo
  if (zeros(0, 5) && h[5] === 0xffff) {
    const why = v4Reason(v4(h[6], h[7]))
    return why ? `IPv4-mapped ${why}` : null
  }
  if (zeros(0, 7) && h[7] === 1) return 'loopback (::1)'
  if (zeros(0, 7) && h[7] === 0) return 'unspecified (::)'
  if (zeros(0, 6)) return 'IPv4-compatible (::/96)'
  if (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6)) {
    const why = v4Reason(v4(h[6], h[7]))
    return why ? `NAT64 ${why}` : null
  }
  if ((h[0] & 0xfe00) === 0xfc00) return 'unique local (fc00::/7)'
  if ((h[0] & 0xffc0) === 0xfe80) return 'link-local (fe80::/10)'
  if ((h[0] & 0xffc0) === 0xfec0) return 'site-local (fec0::/10)'
  if ((h[0] & 0xff00) === 0xff00) return 'multicast (ff00::/8)'
  if ((h[0] & 0xe000) !== 0x2000) return 'not global unicast (outside 2000::/3)'
  if (h[0] === 0x2001 && h[1] === 0x0db8) return 'documentation (2001:db8::/32)'
  if (h[0] === 0x2001 && h[1] < 0x0200) return 'IETF special purpose (2001::/23)'
  if (h[0] === 0x2002) {
    const why = v4Reason(v4(h[1], h[2]))
    return why ? `6to4 ${why}` : null
  }
  if (h[0] === 0x3fff && (h[1] & 0xf000) === 0) return 'documentation (3fff::/20)'
  return null
}

/**
 * Why an IP address is not a public unicast address (loopback, private,
 * link-local, CGNAT, multicast, ...), or null when it is public. Anything
 * that is not a valid IP is refused too.
 */
export function nonPublicReason(ip: string): string | null {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip
  const fam = isIP(bare.split('%')[0])
  if (fam === 4) return v4Reason(parseIPv4(bare)!)
  if (fam === 6) {
    const h = parseIPv6(bare)
    return h ? v6Reason(h) : 'unparseable IPv6 address'
  }
  return 'not an IP address'
}

// ---------------------------------------------------------------------------
// transport

export interface GuardOptions {
  allowPrivateNetwork?: boolean
  resolve?: Resolver
}

const defaultResolve: Resolver = (hostname) => dnsLookup(hostname, { all: true })

const privateHint = 'set allowPrivateNetwork to allow it'

/** Checks scheme and IP-literal hosts (no DNS); returns the bare host name or IP. */
export function checkUrlStatic(url: URL, allowPrivate: boolean): string {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SsrfError(`refusing ${url.protocol} URL ${url.href}: remote agents must use http: or https:`)
  }
  if (url.username || url.password) throw new SsrfError(`refusing ${url.origin}: credentials in remote agent URLs are not supported`)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  if (isIP(host) && !allowPrivate) {
    const why = nonPublicReason(host)
    if (why) throw new SsrfError(`refusing to connect to ${host} for ${url.origin}: ${why} address; ${privateHint}`)
  }
  return host
}

/** Resolves a host name and checks every address it resolves to. */
async function resolveChecked(hostname: string, allowPrivate: boolean, resolve: Resolver): Promise<{ address: string; family: number }[]> {
  let addrs: { address: string; family: number }[]
  try {
    addrs = await resolve(hostname)
  } catch (err) {
    throw new Error(`cannot resolve ${hostname}: ${(err as Error)?.message ?? String(err)}`)
  }
  if (addrs.length === 0) throw new Error(`cannot resolve ${hostname}: no addresses`)
  if (!allowPrivate) {
    for (const a of addrs) {
      const why = nonPublicReason(a.address)
      if (why) throw new SsrfError(`refusing to connect to ${hostname} (${a.address}): ${why} address; ${privateHint}`)
    }
  }
  return addrs
}

/**
 * Full pre-connection check of a URL: scheme, IP literal, and every address
 * its host name resolves to. Used when a caller supplies its own fetch (the
 * built-in transport checks at connect time instead, on the very address it
 * connects to).
 */
export async function assertUrlAllowed(url: URL, opts: GuardOptions = {}): Promise<void> {
  const allow = opts.allowPrivateNetwork ?? false
  const host = checkUrlStatic(url, allow)
  if (!isIP(host)) await resolveChecked(host, allow, opts.resolve ?? defaultResolve)
}

/** A `lookup` for node:net that resolves, checks every address, and hands back only checked ones. */
function guardedLookup(allowPrivate: boolean, resolve: Resolver): LookupFunction {
  // biome-ignore lint/suspicious/noExplicitAny: node:net calls lookup back with one address or a list, by `options.all`
  return ((hostname: string, options: { all?: boolean; family?: number | string }, cb: (...args: any[]) => void) => {
    resolveChecked(hostname, allowPrivate, resolve).then(
      (addrs) => {
        const fam = options?.family === 'IPv4' ? 4 : options?.family === 'IPv6' ? 6 : Number(options?.family) || 0
        const list = fam ? addrs.filter((a) => a.family === fam) : addrs
        if (list.length === 0) return cb(Object.assign(new Error(`cannot resolve ${hostname}: no IPv${fam} address`), { code: 'ENOTFOUND' }))
        if (options?.all) cb(null, list)
        else cb(null, list[0].address, list[0].family)
      },
      (err) => cb(err),
    )
  }) as LookupFunction
}

export interface GuardedFetch {
  fetch: typeof fetch
  /** destroys pooled keep-alive sockets */
  close(): void
}

/**
 * A fetch-compatible client on node:http/https that never follows redirects
 * and only connects to addresses that passed the SSRF check: IP literals are
 * checked before the request, host names inside the socket's `lookup`, so
 * the address checked is the address connected to (no DNS rebinding window).
 * Supports string/Uint8Array/ArrayBuffer bodies, which is all this module needs.
 */
export function createGuardedFetch(opts: GuardOptions = {}): GuardedFetch {
  const allow = opts.allowPrivateNetwork ?? false
  const lookup = guardedLookup(allow, opts.resolve ?? defaultResolve)
  const agentOpts = { keepAlive: true, maxSockets: 8, maxFreeSockets: 4, timeout: 30_000, lookup }
  const httpAgent = new http.Agent(agentOpts)
  const httpsAgent = new https.Agent(agentOpts)

  const doFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    let url: URL
    let method = init.method ?? 'GET'
    let headers = new Headers(init.headers)
    let body: Uint8Array | string | null = null
    if (input instanceof Request) {
      url = new URL(input.url)
      method = init.method ?? input.method
      if (!init.headers) headers = new Headers(input.headers)
      if (init.body === undefined && method !== 'GET' && method !== 'HEAD') body = new Uint8Array(await input.arrayBuffer())
    } else {
      url = new URL(input)
    }
    const b = init.body
    if (typeof b === 'string' || b instanceof Uint8Array) body = b
    else if (b instanceof ArrayBuffer) body = new Uint8Array(b)
    else if (b != null) throw new TypeError('guarded fetch supports only string, Uint8Array and ArrayBuffer bodies')

    const host = checkUrlStatic(url, allow)
    const signal = init.signal ?? undefined
    signal?.throwIfAborted()
    const isHttps = url.protocol === 'https:'
    const hdrs: Record<string, string> = {}
    headers.forEach((v, k) => {
      hdrs[k] = v
    })
    if (body !== null) hdrs['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength)

    return new Promise<Response>((resolve, reject) => {
      const req = (isHttps ? https : http).request({
        protocol: url.protocol,
        hostname: host,
        port: url.port || (isHttps ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        method,
        headers: hdrs,
        agent: isHttps ? httpsAgent : httpAgent,
        lookup,
        signal,
      })
      req.on('error', reject)
      req.on('response', (res) => {
        const status = res.statusCode ?? 0
        const h = new Headers()
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined || k === 'set-cookie') continue
          for (const x of Array.isArray(v) ? v : [v]) h.append(k, x)
        }
        const nullBody = method === 'HEAD' || status === 204 || status === 205 || status === 304
        if (nullBody) res.resume()
        try {
          const stream = nullBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>)
          resolve(new Response(stream, { status, statusText: res.statusMessage ?? '', headers: h }))
        } catch (err) {
          res.destroy()
          reject(new Error(`invalid HTTP response (status ${status}): ${(err as Error).message}`))
        }
      })
      req.end(body ?? undefined)
    })
  }

  return {
    fetch: doFetch as typeof fetch,
    close() {
      httpAgent.destroy()
      httpsAgent.destroy()
    },
  }
}

/** Reads a body as UTF-8, giving up past `max` bytes or when `signal` aborts. */
export async function readCapped(res: Response, max: number, signal?: AbortSignal): Promise<string> {
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {})
    throw new Error(`response body of ${declared} bytes exceeds the ${max}-byte limit`)
  }
  if (!res.body) return ''
  const reader = res.body.getReader()
  const onAbort = () => {
    reader.cancel(signal?.reason).catch(() => {})
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      signal?.throwIfAborted()
      const { done, value } = await reader.read()
      signal?.throwIfAborted()
      if (done) break
      total += value.byteLength
      if (total > max) {
        await reader.cancel().catch(() => {})
        throw new Error(`response body exceeds the ${max}-byte limit`)
      }
      chunks.push(value)
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
}

/**
 * A passive recorder of the HTTP responses a node:http server sends, so an
 * end-to-end test can check bodies it did not request itself (e.g. the
 * getFeedSkeleton calls the AppView makes). It patches `res.write`/`res.end`
 * of each matching request before the app's own 'request' listener runs;
 * nothing about the response changes.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

export interface TappedResponse {
  method: string
  /** path + query, as received */
  url: string
  /** the authorization header the caller sent (null when none) */
  authorization: string | null
  status: number
  contentType: string | null
  body: string
}

export interface Wiretap {
  /** finished responses, in completion order */
  readonly seen: TappedResponse[]
  detach(): void
}

const toBuffer = (chunk: unknown, encoding?: unknown): Buffer | null => {
  if (chunk == null || typeof chunk === 'function') return null
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  return null
}

/** Records every response to a request whose path starts with one of `pathPrefixes`. */
export function tapResponses(server: Server, pathPrefixes: string[]): Wiretap {
  const seen: TappedResponse[] = []
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? ''
    if (!pathPrefixes.some((p) => url.startsWith(p))) return
    const chunks: Buffer[] = []
    let headContentType: string | null = null
    const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse
    res.writeHead = ((...args: unknown[]) => {
      // writeHead(status, [message], [headers]); headers as an object or a flat array
      const h = args.find((a, i) => i > 0 && typeof a === 'object' && a !== null)
      if (Array.isArray(h)) {
        for (let i = 0; i + 1 < h.length; i += 2) if (String(h[i]).toLowerCase() === 'content-type') headContentType = String(h[i + 1])
      } else if (h) {
        for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === 'content-type') headContentType = String(v)
      }
      return writeHead(...args)
    }) as ServerResponse['writeHead']
    const write = res.write.bind(res) as (...a: unknown[]) => boolean
    const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      const b = toBuffer(chunk, rest[0])
      if (b) chunks.push(Buffer.from(b))
      return write(chunk, ...rest)
    }) as ServerResponse['write']
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      const b = toBuffer(chunk, rest[0])
      if (b) chunks.push(Buffer.from(b))
      return end(chunk, ...rest)
    }) as ServerResponse['end']
    res.once('finish', () => {
      const set = res.getHeader('content-type')
      const ct = set === undefined ? headContentType : String(set)
      seen.push({
        method: req.method ?? 'GET',
        url,
        authorization: req.headers.authorization ?? null,
        status: res.statusCode,
        contentType: ct,
        body: Buffer.concat(chunks).toString('utf8'),
      })
    })
  }
  server.prependListener('request', listener)
  return { seen, detach: () => void server.off('request', listener) }
}

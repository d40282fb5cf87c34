/**
 * question-lover: an example Skysift remote agent.
 *
 * A remote agent is any HTTP server that speaks `skysift-remote-agent/1`
 * (see docs/remote-agents.md): it answers `GET /meta` with a description of
 * itself and `POST /score` with one score per post. This one scores posts
 * that end with a question mark higher, and can drop everything else.
 *
 * Run it (Node 24, no build step):
 *
 *     node examples/remote-agent/server.ts            # listens on 127.0.0.1:8787
 *     PORT=9000 HOST=0.0.0.0 node examples/remote-agent/server.ts
 *
 * Try it:
 *
 *     curl http://127.0.0.1:8787/meta
 *     curl -X POST http://127.0.0.1:8787/score -H 'content-type: application/json' \
 *       -d '{"api":1,"agent":"question-lover","options":{"boost":2},"now":0,
 *            "posts":[{"uri":"at://h:x/app.bsky.feed.post/1","createdAt":0,"text":"why?"}]}'
 *
 * Then point Skysift at it (the admin registers the base URL). A server on
 * a private or loopback address only works when the admin sets
 * `allowPrivateNetwork`; in production it must be publicly reachable.
 *
 * It uses nothing but node:http and zod, and keeps no state: every request
 * carries the options and the posts.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'

const API = 1
const MAX_POSTS = 100
const MAX_BODY = 1024 * 1024

const optionsSchema = z.object({
  /** score given to a question */
  boost: z.number().min(0).max(10).default(1),
  /** drop posts that are not questions instead of scoring them 0 */
  dropStatements: z.boolean().default(false),
})
type Options = z.infer<typeof optionsSchema>

/** What /meta answers. `options` is a JSON Schema; `needs` lists the post fields we want. */
export const META = {
  id: 'question-lover',
  version: '1.0.0',
  title: 'Question lover',
  description:
    'Ranks posts that end with a question mark higher (score = boost); other posts score 0, or are dropped with dropStatements. Posts without text get no opinion.',
  author: 'skysift examples',
  api: API,
  options: z.toJSONSchema(optionsSchema, { io: 'input' }),
  needs: ['text'],
}

const requestSchema = z.object({
  api: z.number(),
  agent: z.string(),
  options: z.record(z.string(), z.unknown()).default({}),
  now: z.number(),
  posts: z.array(z.object({ uri: z.string(), createdAt: z.number(), text: z.string().optional() }).loose()),
})
export type ScoreRequest = z.infer<typeof requestSchema>

type Score = number | 'drop' | null

/** The scoring itself: a pure function of the posts and the options. */
export function scorePosts(posts: { text?: string }[], options: Options): Score[] {
  return posts.map((p) => {
    const text = (p.text ?? '').trim()
    if (text === '') return null
    if (/[?？]$/u.test(text)) return options.boost
    return options.dropStatements ? 'drop' : 0
  })
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
  res.end(json)
}

const fail = (res: http.ServerResponse, status: number, error: string, message: string) => send(res, status, { error, message })

async function readBody(req: http.IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) return null
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export interface ExampleAgentOptions {
  port?: number
  host?: string
  /** called with every valid /score request (for tests and logging) */
  onScore?: (req: ScoreRequest) => void
}

/** Starts the example agent; resolves once it listens. */
export async function startExampleAgent(opts: ExampleAgentOptions = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (path === '/meta' && req.method === 'GET') return send(res, 200, META)
      if (path !== '/score') return fail(res, 404, 'NotFound', `no route for ${path}`)
      if (req.method !== 'POST') return fail(res, 405, 'MethodNotAllowed', 'use POST')
      const text = await readBody(req)
      if (text === null) return fail(res, 413, 'TooLarge', `request body over ${MAX_BODY} bytes`)
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        return fail(res, 400, 'InvalidRequest', 'body is not JSON')
      }
      const parsed = requestSchema.safeParse(json)
      if (!parsed.success) return fail(res, 400, 'InvalidRequest', parsed.error.issues[0].message)
      const body = parsed.data
      if (body.api !== API) return fail(res, 400, 'UnsupportedApi', `this agent speaks API ${API}, not ${body.api}`)
      if (body.posts.length > MAX_POSTS) return fail(res, 400, 'TooManyPosts', `at most ${MAX_POSTS} posts per request`)
      const options = optionsSchema.safeParse(body.options)
      if (!options.success) return fail(res, 400, 'InvalidOptions', options.error.issues[0].message)
      opts.onScore?.(body)
      send(res, 200, { scores: scorePosts(body.posts, options.data) })
    } catch (err) {
      if (!res.headersSent) fail(res, 500, 'InternalError', String((err as Error)?.message ?? err))
      else res.destroy()
    }
  })
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { url } = await startExampleAgent({ port: Number(process.env.PORT ?? 8787), host: process.env.HOST ?? '127.0.0.1' })
  console.log(`question-lover remote agent listening on ${url} (GET ${url}/meta, POST ${url}/score)`)
}

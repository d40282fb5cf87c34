/**
 * A real serving process for the abuse suite (`node workers/serve.ts` on a
 * seeded SQLite file, real Redis, did:web test identities), a way to read
 * what it holds (RSS, threads, open files) and latency measurements of an
 * ordinary reader. Every bound is checked against a baseline taken in the
 * same run: ratios, never absolute times.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll } from 'vitest'
import { openDb } from '../../../src/store/db.ts'
import { BatchWriter } from '../../../src/store/writer.ts'
import { freePort, killAll, Proc, ROOT } from '../../faults/support/procs.ts'
import { postEvent } from '../../support/builders.ts'
import { startIdentities, type TestUser } from '../../support/identity.ts'
import { queuePrefix, REDIS_URL, tempDir } from '../../support/resources.ts'

export const SERVICE = 'did:web:feeds.test'
export const FRESH = `at://${SERVICE}/app.bsky.feed.generator/fresh`
export const SCIENCE = `at://${SERVICE}/app.bsky.feed.generator/science`

const WORDS = [
  'science',
  'space',
  'cats',
  'rain',
  'coffee',
  'music',
  'garden',
  'bikes',
  'physics',
  'climate',
  'telescope',
  'bread',
  'trains',
  'chess',
  'sunset',
  'ocean',
]

export interface Server {
  url: string
  proc: Proc
  dbPath: string
  users: Record<string, TestUser>
  /** an XRPC call as `who` (null: anonymous); status, body and how long it took (ms) */
  call(method: 'GET' | 'POST', nsid: string, who: TestUser | null, input?: Record<string, unknown>): Promise<{ status: number; body: any; ms: number }>
  stats(): ProcStats
}

export interface ProcStats {
  rssMb: number
  threads: number
  fds: number
}

/** Starts a serving process on a fresh SQLite file holding `posts` recent posts; stopped after the file's tests. */
export async function startServer(opts: { posts?: number; users?: string[]; env?: Record<string, string> } = {}): Promise<Server> {
  const t = tempDir('skysift-abuse')
  const q = queuePrefix()
  const ids = await startIdentities(opts.users ?? ['reader'])
  afterAll(async () => {
    await killAll()
    await ids.close()
    await q.cleanup()
    t.cleanup()
  })
  const dbPath = path.join(t.dir, 'skysift.db')
  const db = openDb(dbPath)
  const n = opts.posts ?? 5000
  const events = Array.from({ length: n }, (_, i) =>
    postEvent({
      author: `did:plc:abuseauthor${String(i % 97).padStart(13, '0')}`,
      minutesAgo: (n - i) * (600 / n),
      text: `${WORDS[i % WORDS.length]} and ${WORDS[(i * 7) % WORDS.length]}: post number ${i} about ${WORDS[(i * 3) % WORDS.length]}`,
    }),
  )
  const writer = new BatchWriter(db.sqlite)
  for (let i = 0; i < events.length; i += 1000) writer.write({ id: `seed-${i}`, events: events.slice(i, i + 1000), scores: [], eventTime: Date.now() })
  db.close()
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SKYSIFT_DB_PATH: dbPath,
    REDIS_URL,
    SKYSIFT_QUEUE_PREFIX: q.prefix,
    SKYSIFT_PORT: String(port),
    SKYSIFT_HOST: '127.0.0.1',
    SKYSIFT_SERVICE_DID: SERVICE,
    SKYSIFT_ALLOW_INSECURE_HTTP: 'true',
    SKYSIFT_START_REDIS: 'never',
    SKYSIFT_LOG_LEVEL: 'warn',
    SKYSIFT_FEEDS_FILE: path.join(ROOT, 'feeds.example.json'),
    ...opts.env,
  }
  const proc = new Proc('serve', [path.join(ROOT, 'workers', 'serve.ts')], env, path.join(t.dir, 'serve.log')).start()
  const url = `http://127.0.0.1:${port}`
  const end = Date.now() + 60_000
  for (;;) {
    const ok = await fetch(`${url}/xrpc/_health`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (!proc.running || Date.now() > end) throw new Error(`the server did not start:\n${proc.tail()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  const call: Server['call'] = async (method, nsid, who, input = {}) => {
    const token = who ? await who.token(SERVICE, nsid) : undefined
    const target = method === 'GET' ? `${url}/xrpc/${nsid}?${new URLSearchParams(input as Record<string, string>)}` : `${url}/xrpc/${nsid}`
    const t0 = performance.now()
    const res = await fetch(target, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: method === 'POST' ? JSON.stringify(input) : undefined,
    })
    const text = await res.text()
    const ms = performance.now() - t0
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body, ms }
  }
  const stats = (): ProcStats => {
    const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8')
    return {
      rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024,
      threads: Number(/Threads:\s+(\d+)/.exec(status)![1]),
      fds: fs.readdirSync(`/proc/${proc.pid}/fd`).length,
    }
  }
  return { url, proc, dbPath, users: ids.users, call, stats }
}

export interface Latency {
  n: number
  p50: number
  p99: number
}

/** The q-quantile of sorted numbers. */
export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** Runs `request` back to back for `ms` (at least `min` times) and returns its latency percentiles. */
export async function measure(request: () => Promise<number>, ms: number, min = 50): Promise<Latency> {
  const times: number[] = []
  const end = performance.now() + ms
  while (performance.now() < end || times.length < min) times.push(await request())
  times.sort((a, b) => a - b)
  return { n: times.length, p50: quantile(times, 0.5), p99: quantile(times, 0.99) }
}

/** Runs `body` on `clients` concurrent loops until `stop()` is true; resolves with how many calls each made. */
export async function hammer(clients: number, body: (client: number, i: number) => Promise<void>, stop: () => boolean): Promise<number> {
  let calls = 0
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; !stop(); i++) {
        await body(c, i)
        calls++
      }
    }),
  )
  return calls
}

/** One line of figures for the log (what the suite measured). */
export function report(name: string, figures: Record<string, unknown>): void {
  process.stdout.write(`[abuse] ${name} ${JSON.stringify(figures)}\n`)
}

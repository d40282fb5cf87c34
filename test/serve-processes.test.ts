import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultServeProcesses, readConfig, serveProcessCount } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { decodeFeedContext } from '../src/rank/feed-context.ts'
import { RECHECK_MS } from '../src/feed/snapshot-pages.ts'
import { SERVED_BY_HEADER, labelProcessScoped } from '../src/serve/processes.ts'
import { SharedRateBudget } from '../src/serve/shared-budget.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { Redis } from 'ioredis'
import { redisOptions } from '../src/contracts/queues.ts'
import { postEvent } from './support/builders.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { collectJsonLines, queuePrefix, REDIS_URL, tempDir, waitFor } from './support/resources.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = path.join(ROOT, 'src/cli.ts')
const SERVICE = 'did:web:feeds.test'
const author = 'did:plc:fionafionafionafionafion'

interface LogLine {
  pid: number
  msg: string
  port?: number
}

interface Reply {
  status: number
  servedBy: number
  body: any
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('SKYSIFT_SERVE_PROCESSES', () => {
  it('resolves: a count, auto (one per core), or a default by the machine', () => {
    expect(serveProcessCount(3, 8)).toBe(3)
    expect(serveProcessCount('auto', 6)).toBe(6)
    expect(serveProcessCount(undefined, 2)).toBe(1)
    expect(defaultServeProcesses(1)).toBe(1)
    expect(defaultServeProcesses(4)).toBe(2)
    expect(defaultServeProcesses(64)).toBe(8)
    expect(readConfig({ SKYSIFT_SERVE_PROCESSES: 'auto' }).serveProcesses).toBeGreaterThanOrEqual(1)
    expect(readConfig({ SKYSIFT_SERVE_PROCESSES: '2' }).serveProcesses).toBe(2)
    expect(() => readConfig({ SKYSIFT_SERVE_PROCESSES: '0' })).toThrow(/SKYSIFT_SERVE_PROCESSES/)
    expect(() => readConfig({ SKYSIFT_SERVE_PROCESSES: 'many' })).toThrow(/SKYSIFT_SERVE_PROCESSES/)
  })

  it('labels process-scoped metrics with the pid, and leaves the shared ones alone', () => {
    const body = [
      '# HELP skysift_feed_cache_hits_total x',
      'skysift_feed_cache_hits_total 5',
      'skysift_http_request_duration_seconds_bucket{le="0.001",method="GET",route="/",status="200"} 3',
      'process_cpu_seconds_total 1.5',
      'skysift_events_stored_total 10',
      'skysift_queue_jobs{queue="events",state="waiting"} 0',
    ].join('\n')
    expect(labelProcessScoped(body, 42).split('\n')).toEqual([
      '# HELP skysift_feed_cache_hits_total x',
      'skysift_feed_cache_hits_total{process="42"} 5',
      'skysift_http_request_duration_seconds_bucket{process="42",le="0.001",method="GET",route="/",status="200"} 3',
      'process_cpu_seconds_total{process="42"} 1.5',
      'skysift_events_stored_total 10',
      'skysift_queue_jobs{queue="events",state="waiting"} 0',
    ])
  })
})

describe('SharedRateBudget (real Redis)', () => {
  it('is one budget for every process that shares it', async () => {
    const q = queuePrefix()
    const [r1, r2] = [new Redis(redisOptions(REDIS_URL)), new Redis(redisOptions(REDIS_URL))]
    try {
      const opts = { perKey: 2, total: 3, windowMs: 60_000 }
      const [a, b] = [new SharedRateBudget(r1, `${q.prefix}:submit`, opts, silentLogger), new SharedRateBudget(r2, `${q.prefix}:submit`, opts, silentLogger)]
      expect(await a.take('ann')).toBeNull()
      expect(await b.take('ann')).toBeNull()
      expect(await a.take('ann')).toMatchObject({ scope: 'key' })
      expect(await b.take('bob')).toBeNull()
      const spent = await a.take('cat')
      expect(spent).toMatchObject({ scope: 'total' })
      expect(spent!.retryAfterS).toBeGreaterThan(55)
    } finally {
      r1.disconnect()
      r2.disconnect()
      await q.cleanup()
    }
  })
})

describe('two serving processes on one port (real processes, SQLite file, Redis, did:web identities)', () => {
  let child: ChildProcess
  const lines: LogLine[] = []
  let port = 0
  let reader: TestUser
  let FEED = ''
  let dbPath = ''
  const cleanups: (() => unknown)[] = []
  const posts = [
    postEvent({ author, text: 'the space telescope found water vapour', minutesAgo: 50 }),
    postEvent({ author, text: 'a new study on climate and oceans', minutesAgo: 40 }),
    postEvent({ author, text: 'physics of cats falling on their feet', minutesAgo: 30 }),
    postEvent({ author, text: 'space station crew photos', minutesAgo: 20 }),
    postEvent({ author, text: 'research funding news', minutesAgo: 10 }),
  ]
  const serving = () => lines.filter((l) => l.msg === 'serving')

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['reader'])
    reader = ids.users.reader
    cleanups.push(ids.close)
    dbPath = path.join(t.dir, 'skysift.db')
    const env = {
      ...process.env,
      SKYSIFT_DB_PATH: dbPath,
      REDIS_URL,
      SKYSIFT_QUEUE_PREFIX: q.prefix,
      SKYSIFT_PORT: '0',
      SKYSIFT_HOST: '127.0.0.1',
      SKYSIFT_SERVICE_DID: SERVICE,
      SKYSIFT_ALLOW_INSECURE_HTTP: 'true',
      SKYSIFT_START_REDIS: 'never',
      SKYSIFT_SERVE_PROCESSES: '2',
      SKYSIFT_BACKFILL_CONCURRENCY: '0',
      SKYSIFT_LOG_LEVEL: 'info',
    }
    // the posts are in the file before the server starts (as the store would have written them)
    const seed = new AppContext(readConfig(env), silentLogger)
    FEED = seed.feeds[1].uri // science: a fixed topic filter, default mix recency + engagement
    new BatchWriter(seed.db.sqlite).write({ id: 'seed', events: posts, scores: [], eventTime: Date.now() })
    await seed.close()

    child = spawn(process.execPath, [CLI, 'serve'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    collectJsonLines(child, lines)
    await waitFor(() => serving().length >= 2, 'two serving processes', 120_000)
    port = serving()[0].port!
  }, 150_000)

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
    for (const c of cleanups.reverse()) await c()
  })

  /** One request; without an agent on a connection of its own (the kernel picks the process per connection). */
  const request = (
    method: 'GET' | 'POST',
    urlPath: string,
    headers: Record<string, string> = {},
    body?: string,
    agent: http.Agent | false = false,
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method, path: urlPath, agent, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let parsed: unknown = text
            try {
              parsed = JSON.parse(text)
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, servedBy: Number(res.headers[SERVED_BY_HEADER]), body: parsed })
          })
        },
      )
      req.on('error', reject)
      req.end(body)
    })

  /**
   * A kept-alive connection to process `pid`: connections are opened until the kernel gives one to it, and every
   * request on it is then answered by it (checked: a write must not go to the other process by mistake).
   */
  const links = new Map<number, http.Agent>()
  const link = async (pid: number): Promise<http.Agent> => {
    const have = links.get(pid)
    if (have && (await request('GET', '/xrpc/_health', {}, undefined, have)).servedBy === pid) return have
    have?.destroy()
    for (let i = 0; i < 200; i++) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      if ((await request('GET', '/xrpc/_health', {}, undefined, agent)).servedBy === pid) {
        links.set(pid, agent)
        return agent
      }
      agent.destroy()
    }
    throw new Error(`no connection reached process ${pid}`)
  }
  cleanups.push(() => links.forEach((a) => a.destroy()))

  /** An XRPC call answered by process `pid`, signed by the reader unless `signed` is false. */
  const xrpc = async (pid: number, method: 'GET' | 'POST', nsid: string, input: Record<string, unknown> = {}, signed = true): Promise<Reply> => {
    const auth: Record<string, string> = signed ? { authorization: `Bearer ${await reader.token(SERVICE, nsid)}` } : {}
    const agent = await link(pid)
    const r =
      method === 'GET'
        ? await request('GET', `/xrpc/${nsid}?${new URLSearchParams(input as Record<string, string>)}`, auth, undefined, agent)
        : await request('POST', `/xrpc/${nsid}`, auth, JSON.stringify(input), agent)
    expect(r.servedBy).toBe(pid)
    return r
  }
  const page = (pid: number, signed = true) => xrpc(pid, 'GET', 'app.bsky.feed.getFeedSkeleton', { feed: FEED, limit: '50' }, signed)
  const posts_ = (r: Reply) => (r.body.feed as { post: string }[]).map((i) => i.post)
  const pids = () => [...new Set(serving().map((l) => l.pid))].filter(alive)

  it('listens with two processes on one port, and connections reach both', async () => {
    const [a, b] = serving()
    expect(a.port).toBe(b.port)
    expect(a.pid).not.toBe(b.pid)
    const seen = new Set<number>()
    for (let i = 0; i < 60 && seen.size < 2; i++) {
      const r = await request('GET', '/xrpc/_health')
      expect(r.status).toBe(200)
      seen.add(r.servedBy)
    }
    expect([...seen].sort()).toEqual([a.pid, b.pid].sort())
    // /metrics, answered by either: its own figures carry its pid, the shared ones do not
    const m = await request('GET', '/metrics')
    expect(m.body).toContain(`skysift_feed_cache_hits_total{process="${m.servedBy}"}`)
    expect(m.body).toMatch(/^skysift_events_stored_total \d+$/m)
  })

  it('a mix saved through one process is the one the other serves (read per request: no delay)', async () => {
    const [a, b] = pids()
    const put = await xrpc(a, 'POST', 'app.skysift.feed.putMix', { feed: FEED, agents: [{ agent: 'recency', weight: 40 }] })
    expect(put.status).toBe(200)
    const got = await xrpc(b, 'GET', 'app.skysift.feed.getMix', { feed: FEED })
    expect(got.body.source).toBe('private')
    expect(got.body.fingerprint).toBe(put.body.fingerprint)
    const served = await page(b)
    expect(decodeFeedContext(served.body.feed[0].feedContext)?.fingerprint).toBe(put.body.fingerprint)
    // and its deletion, the other way round
    expect((await xrpc(b, 'POST', 'app.skysift.feed.deleteMix', { feed: FEED })).status).toBe(200)
    expect((await xrpc(a, 'GET', 'app.skysift.feed.getMix', { feed: FEED })).body.source).toBe('default')
    expect(decodeFeedContext((await page(a)).body.feed[0].feedContext)?.fingerprint).not.toBe(put.body.fingerprint)
  })

  it('feedback sent through one process shapes the pages the other serves, and so does its undo', async () => {
    const [a, b] = pids()
    const before = await page(a)
    const second = before.body.feed[1] as { post: string; feedContext: string }
    const third = before.body.feed[2] as { post: string }
    const less = (item: Record<string, string>) => ({ interactions: [{ ...item, event: 'app.bsky.feed.defs#requestLess' }] })
    expect((await xrpc(a, 'POST', 'app.bsky.feed.sendInteractions', less({ item: second.post, feedContext: second.feedContext }))).status).toBe(200)
    expect(posts_(await page(b))).not.toContain(second.post)
    // feedback naming only the request id of a page another process served finds its feed
    const fromB = await page(b)
    expect((await xrpc(a, 'POST', 'app.bsky.feed.sendInteractions', less({ item: third.post, reqId: fromB.body.reqId }))).status).toBe(200)
    expect(posts_(await page(b))).not.toContain(third.post)
    const listed = await xrpc(b, 'GET', 'app.skysift.feed.listFeedback', { feed: FEED })
    const ours = (listed.body.feedback as { id: number; post: string }[]).filter((f) => f.post === second.post || f.post === third.post)
    expect(ours.map((f) => f.post).sort()).toEqual([second.post, third.post].sort())
    for (const f of ours) expect((await xrpc(b, 'POST', 'app.skysift.feed.undoFeedback', { id: f.id })).body.undone).toBe(true)
    expect(posts_(await page(a))).toEqual(expect.arrayContaining([second.post, third.post]))
  })

  it('a post deleted in the store leaves the pages of both processes within the documented bound', async () => {
    const [a, b] = pids()
    const victim = (await page(a, false)).body.feed[0].post as string
    expect(posts_(await page(b, false))).toContain(victim)
    // the store (another process) logs the deletion in the file
    const ctx = new AppContext(readConfig({}, { dbPath, queuePrefix: 'unused' }), silentLogger)
    new BatchWriter(ctx.db.sqlite).write({
      id: 'del',
      events: [{ t: 'delete', uri: victim, collection: 'app.bsky.feed.post' }],
      scores: [],
      eventTime: Date.now(),
    })
    await ctx.close()
    await new Promise((r) => setTimeout(r, RECHECK_MS))
    expect(posts_(await page(a, false))).not.toContain(victim)
    expect(posts_(await page(b, false))).not.toContain(victim)
  })

  it('a serving process that dies is started again; SIGTERM to the first stops them all', async () => {
    const first = serving()[0].pid
    const peer = pids().find((p) => p !== first)!
    process.kill(peer, 'SIGKILL')
    await waitFor(() => pids().filter((p) => p !== first && p !== peer).length === 1, 'a new serving process', 60_000)
    const fresh = pids().find((p) => p !== first && p !== peer)!
    expect((await xrpc(fresh, 'GET', 'app.bsky.feed.describeFeedGenerator', {}, false)).status).toBe(200)
    child.kill('SIGTERM')
    const exit = await new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    expect(exit).toBe(0)
    await waitFor(() => !alive(fresh), 'the peer to exit', 20_000)
  }, 120_000)
})

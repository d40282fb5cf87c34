/**
 * `node bench/edge.ts`: getFeedSkeleton served by the primary (`skysift serve`, next to the SQLite file) and by an
 * edge node (`skysift edge`, from Redis alone), back to back on the same data: anonymous readers paging both
 * example feeds, then signed-in readers (each with their own token and DID document) reading first pages. Each
 * server is a process of its own; its CPU per request is read from /proc (less moved by other work on the machine
 * than req/s).
 *
 * The Redis state the edge serves is published by the primary when it publishes (SKYSIFT_EDGE_PUBLISH); by hand
 * through the contract (src/contracts/edge.ts) otherwise, from the snapshots the primary served.
 *
 * Flags: --posts N (20000)  --readers R (500)  --duration S (10)  --connections C (64)  --rounds N (3: the nodes measured in
 *        turn, primary then edge, N times; each figure is the median of its rounds)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { EXAMPLE_FEEDS_FILE, readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import type { PostEvent } from '../src/contracts/events.ts'
import { edgeKeys, READER_EXCLUDED_FIELD, readerFeedField, type EdgeSnapshot } from '../src/contracts/edge.ts'
import { deleteQueueKeys, redisOptions } from '../src/contracts/queues.ts'
import { openLists } from '../src/feed/open-lists.ts'
import { silentLogger } from '../src/logger.ts'
import { decodeCursor } from '../src/rank/cursor.ts'
import { storedSecret } from '../src/store/secrets.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { benchKey, serviceJwt } from './jwt.ts'
import type { LoadInput, LoadResult } from './load.ts'
import type { PlcInput } from './plc.ts'
import { randomPlcDid } from './workload.ts'
import { log, procCpuSeconds, procRssMb, round, runHelper, stopChild, waitFor } from './util.ts'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const CLI = here('../src/cli.ts')
const SKELETON = 'app.bsky.feed.getFeedSkeleton'

const { values: flags } = parseArgs({
  options: {
    posts: { type: 'string' },
    readers: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    rounds: { type: 'string' },
    help: { type: 'boolean' },
  },
})
if (flags.help) {
  process.stdout.write('node bench/edge.ts [--posts 20000] [--readers 500] [--duration 10] [--connections 64] [--rounds 3]\n')
  process.exit(0)
}
const POSTS = Number(flags.posts ?? 20_000)
const READERS = Number(flags.readers ?? 500)
const DURATION_S = Number(flags.duration ?? 10)
const CONNECTIONS = Number(flags.connections ?? 64)
const ROUNDS = Number(flags.rounds ?? 3)

/** A server process: `skysift serve` or `skysift edge`; resolves once it listens. */
async function start(cmd: 'serve' | 'edge', env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; pid: number }> {
  const child = spawn(process.execPath, [CLI, cmd], { env: { ...env, SKYSIFT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] })
  let port = 0
  let buf = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8')
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      try {
        const l = JSON.parse(line) as { msg?: string; port?: number; level?: number }
        if (l.msg === 'serving' && l.port) port = l.port
        else if ((l.level ?? 0) >= 50) process.stderr.write(`${line}\n`)
      } catch {
        // not a log line
      }
    }
  })
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`skysift ${cmd} exited (${child.exitCode}) before listening`)
      return port > 0
    },
    60_000,
    `skysift ${cmd} to listen`,
  )
  return { child, url: `http://127.0.0.1:${port}`, pid: child.pid! }
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers })
  return { status: res.status, body: await res.json() }
}

interface Figures {
  rps: number
  p50_ms: number
  p99_ms: number
  cpu_ms_per_request: number
  non2xx: number
  rss_mb: number | null
}

async function measure(url: string, pid: number, requests: LoadInput['requests']): Promise<Figures> {
  // a short warm-up, then the measured load
  await runHelper<LoadResult>(here('./load.ts'), { url, connections: CONNECTIONS, durationS: 2, requests } satisfies LoadInput, 60_000)
  const cpu0 = procCpuSeconds(pid) ?? 0
  const r = await runHelper<LoadResult>(here('./load.ts'), { url, connections: CONNECTIONS, durationS: DURATION_S, requests } satisfies LoadInput, 120_000)
  const cpu = (procCpuSeconds(pid) ?? 0) - cpu0
  return {
    rps: round(r.rps),
    p50_ms: r.p50Ms,
    p99_ms: r.p99Ms,
    cpu_ms_per_request: round((cpu * 1000) / Math.max(1, r.total), 3),
    non2xx: r.non2xx,
    rss_mb: procRssMb(pid),
  }
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-bench-edge-'))
  const prefix = `{bench-edge-${randomUUID().slice(0, 8)}}`
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
  const children: ChildProcess[] = []
  const redis = new Redis(redisOptions(redisUrl))
  try {
    // readers: keys, DID documents in a stand-in PLC directory
    const keys = Array.from({ length: 8 }, () => benchKey())
    const readers = Array.from({ length: READERS }, (_, i) => ({ did: randomPlcDid(), key: keys[i % keys.length] }))
    const docs: Record<string, unknown> = {}
    for (const r of readers) {
      docs[r.did] = {
        '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
        id: r.did,
        alsoKnownAs: [`at://${r.did.slice(8)}.bench.invalid`],
        service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.bench.invalid' }],
        verificationMethod: [{ id: `${r.did}#atproto`, type: 'Multikey', controller: r.did, publicKeyMultibase: r.key.did.slice('did:key:'.length) }],
      }
    }
    const docsFile = path.join(tmp, 'plc-docs.json')
    fs.writeFileSync(docsFile, JSON.stringify(docs))
    const { port: plcPort } = await runHelper<{ port: number }>(here('./plc.ts'), { docsFile } satisfies PlcInput, 30_000, {
      keepAlive: (c) => children.push(c),
    })

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REDIS_URL: redisUrl,
      SKYSIFT_QUEUE_PREFIX: prefix,
      SKYSIFT_DB_PATH: path.join(tmp, 'skysift.db'),
      SKYSIFT_PORT: '0',
      SKYSIFT_HOST: '127.0.0.1',
      SKYSIFT_PUBLIC_URL: 'https://feeds.bench.invalid',
      SKYSIFT_FEEDS_FILE: EXAMPLE_FEEDS_FILE,
      SKYSIFT_PLC_URL: `http://127.0.0.1:${plcPort}`,
      SKYSIFT_ALLOW_INSECURE_HTTP: 'true',
      SKYSIFT_START_REDIS: 'never',
      SKYSIFT_SERVE_PROCESSES: '1',
      SKYSIFT_BACKFILL_CONCURRENCY: '0',
      SKYSIFT_EDGE_PUBLISH: '1',
    }
    delete env.SKYSIFT_SERVICE_DID
    delete env.SKYSIFT_PUBLISHER_DID
    const config = readConfig(env)

    // the store: POSTS posts over the last hours, a few thousand authors, English and science-ish text
    log(`writing ${POSTS} posts`)
    const ctx = new AppContext(config, silentLogger)
    const writer = new BatchWriter(ctx.db.sqlite)
    const words = ['space telescope images', 'a physics lecture', 'research on coral reefs', 'my cat again', 'climate study', 'new paper on black holes']
    for (let at = 0; at < POSTS; at += 2000) {
      const events = Array.from({ length: Math.min(2000, POSTS - at) }, (_, i): PostEvent => {
        const n = at + i
        const author = `did:plc:bench${String(n % 3000).padStart(19, 'a')}`
        const rkey = `3kb${String(n).padStart(10, 'a')}`
        const createdAt = Date.now() - ((POSTS - n) * 4 * 3_600_000) / POSTS
        return {
          t: 'post',
          uri: `at://${author}/app.bsky.feed.post/${rkey}`,
          cid: 'bafyreiaaaaaaaaaaaaaaaaaaaa',
          author,
          createdAt,
          text: `${words[n % words.length]} ${n}`,
          langs: ['en'],
          replyRoot: null,
          replyParent: null,
          embed: null,
          quote: null,
          tags: [],
          labels: [],
        }
      })
      writer.write({ id: `b${at}`, events, scores: [], eventTime: Date.now() })
    }

    const primary = await start('serve', env)
    children.push(primary.child)
    const feeds = ctx.feeds.map((f) => f.uri)
    const first = (feed: string) => `/xrpc/${SKELETON}?feed=${encodeURIComponent(feed)}&limit=30`
    // the primary builds its lists on the first read
    for (const feed of feeds) await get(`${primary.url}${first(feed)}`)

    const k = edgeKeys(prefix)
    const published = async () => Object.keys(await redis.hgetall(k.anon)).length === feeds.length
    await new Promise((r) => setTimeout(r, 2500))
    const byPrimary = await published()
    if (!byPrimary) {
      log('the primary does not publish (no SKYSIFT_EDGE_PUBLISH here): publishing by hand through the contract')
      const pages = openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config).pages
      for (const feed of feeds) {
        const p = await get(`${primary.url}${first(feed)}`)
        const id = decodeCursor(p.body.cursor)!.snapshot
        const key = pages.snapshotKey(id)!
        const { items, checkedAt } = pages.storedList(id)
        const snap: EdgeSnapshot = { feed, key: key.key, builtAt: Date.now(), checkedAt, items: items.map((i) => [i.uri, i.context]) }
        await redis.set(k.snapshot(id), JSON.stringify(snap), 'PX', config.snapshotTtlMs)
        await redis.hset(k.anon, feed, String(id))
        // signed-in readers without a mix or feedback read the shared list
        const m = redis.pipeline()
        for (const r of readers) m.hset(k.reader(r.did), readerFeedField(feed), String(id), READER_EXCLUDED_FIELD, '[]')
        await m.exec()
      }
      await redis.hset(k.meta, 'cursor', storedSecret(ctx.db.sqlite, 'cursor'), 'primary', String(Date.now()), 'epoch', 'bench')
    }
    await ctx.close()

    const edge = await start('edge', { ...env, SKYSIFT_DB_PATH: path.join(tmp, 'none', 'skysift.db'), SKYSIFT_PRIMARY_URL: primary.url })
    children.push(edge.child)

    // anonymous: first pages and the pages after them (cursors from the primary, which page on both)
    const anon: LoadInput['requests'] = []
    for (const feed of feeds) {
      let cursor: string | undefined
      anon.push({ path: first(feed) })
      for (let i = 0; i < 4; i++) {
        const p = await get(`${primary.url}${first(feed)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
        cursor = p.body.cursor
        if (!cursor) break
        anon.push({ path: `${first(feed)}&cursor=${encodeURIComponent(cursor)}` })
      }
    }
    const exp = Math.floor(Date.now() / 1000) + 3000
    const signedIn: LoadInput['requests'] = readers.map((r, i) => ({
      path: first(feeds[i % feeds.length]),
      headers: { authorization: `Bearer ${serviceJwt(r.key, { iss: r.did, aud: config.serviceDid, lxm: SKELETON, exp })}` },
    }))
    // both nodes must answer alike before they are compared
    for (const q of [...anon.slice(0, 3), ...signedIn.slice(0, 3)]) {
      const [a, b] = [await get(`${primary.url}${q.path}`, q.headers), await get(`${edge.url}${q.path}`, q.headers)]
      if (a.status !== 200 || JSON.stringify(a.body.feed) !== JSON.stringify(b.body.feed) || a.body.cursor !== b.body.cursor) {
        throw new Error(`the edge answers ${q.path} differently: ${a.status} vs ${b.status}`)
      }
    }

    // and the signed-in ones must be served as signed in (a token that does not verify is served as anonymous)
    await new Promise((r) => setTimeout(r, 200))
    const touched = (await redis.xrange(k.touch, '-', '+')).map(([, f]) => f[3])
    if (!touched.includes(readers[0].did)) throw new Error('the edge served the signed-in readers as anonymous: their tokens do not verify')

    // @NOTE the machine may be shared: the nodes are measured in turn, several times, and each figure is a median
    const runs: Record<string, Figures[]> = {}
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, node] of [
        ['primary', primary],
        ['edge', edge],
      ] as const) {
        log(`round ${round}/${ROUNDS}, ${name}: anonymous`)
        ;(runs[`${name}_anon`] ??= []).push(await measure(node.url, node.pid, anon))
        log(`round ${round}/${ROUNDS}, ${name}: signed in (${READERS} readers)`)
        ;(runs[`${name}_auth`] ??= []).push(await measure(node.url, node.pid, signedIn))
      }
    }
    const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    const out: Record<string, Figures> = {}
    for (const [k, fs] of Object.entries(runs)) {
      out[k] = {
        rps: mid(fs.map((f) => f.rps)),
        p50_ms: mid(fs.map((f) => f.p50_ms)),
        p99_ms: mid(fs.map((f) => f.p99_ms)),
        cpu_ms_per_request: mid(fs.map((f) => f.cpu_ms_per_request)),
        non2xx: fs.reduce((a, f) => a + f.non2xx, 0),
        rss_mb: fs[fs.length - 1].rss_mb,
      }
    }
    const health = (await get(`${edge.url}/xrpc/_health`)).body as { memory?: { rss: number; heapUsed: number }; cache?: unknown }
    log(`edge after the loads: memory ${JSON.stringify(health.memory)} MB, cache ${JSON.stringify(health.cache)}`)
    const rows = Object.entries(out).map(
      ([k, f]) =>
        `${k.padEnd(14)} ${String(f.rps).padStart(7)} req/s  p50 ${f.p50_ms} ms  p99 ${f.p99_ms} ms  cpu ${f.cpu_ms_per_request} ms/req  rss ${f.rss_mb} MB  non2xx ${f.non2xx}`,
    )
    const ratio = (a: number, b: number) => round(a / b, 2)
    rows.push(
      `edge/primary   anon req/s ×${ratio(out.edge_anon.rps, out.primary_anon.rps)}, cpu/req ×${ratio(out.edge_anon.cpu_ms_per_request, out.primary_anon.cpu_ms_per_request)}; ` +
        `signed in req/s ×${ratio(out.edge_auth.rps, out.primary_auth.rps)}, cpu/req ×${ratio(out.edge_auth.cpu_ms_per_request, out.primary_auth.cpu_ms_per_request)}`,
    )
    process.stderr.write(`\n${rows.join('\n')}\n`)
    process.stdout.write(
      `${JSON.stringify({ posts: POSTS, readers: READERS, duration_s: DURATION_S, connections: CONNECTIONS, rounds: ROUNDS, published_by_primary: byPrimary, ...out })}\n`,
    )
  } finally {
    for (const c of children.reverse()) await stopChild(c, 5000)
    redis.disconnect()
    await deleteQueueKeys(redisUrl, prefix)
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`)
  process.exit(1)
})

/**
 * An edge node, for `npm run bench`: the bench's SQLite file served by a primary publishing for edge nodes (`skysift
 * serve` with SKYSIFT_EDGE_PUBLISH), and the same anonymous and signed-in loads run against an edge node (`skysift
 * edge`, from Redis alone) in front of it. Each is a process of its own; their CPU is read from /proc, so the edge's
 * CPU per request can be compared with `serve_processes_1`'s (the primary alone, not publishing).
 */
import { Redis } from 'ioredis'
import { edgeKeys, readerFeedField } from '../src/contracts/edge.ts'
import { redisOptions } from '../src/contracts/queues.ts'
import type { LoadInput, LoadResult } from './load.ts'
import { type LoadFigures, loadFigures, startServer, warmEach } from './serve-processes.ts'
import { log, procCpuSeconds, procRssMb, round, runHelper, sleep, stopChild, waitFor } from './util.ts'
import { fileURLToPath } from 'node:url'

const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url))

export interface EdgeRun extends LoadFigures {
  /** the edge's CPU per request (ms) */
  edge_cpu_ms_per_request: number
  edge_auth_cpu_ms_per_request: number | null
  /** the primary's CPU while the edge served (% of one core): placing readers, publishing */
  primary_cpu_pct: number
  primary_auth_cpu_pct: number | null
  /** signed-in readers the primary had placed (published a list for) when the signed-in load began */
  readers_placed: number | null
  edge_rss_mb: number | null
  primary_rss_mb: number | null
}

/** The DID a request's service-auth token names (its `iss`), or null. */
function issuerOf(headers: Record<string, string> | undefined): string | null {
  const token = headers?.authorization?.replace(/^Bearer /, '')
  if (!token) return null
  try {
    return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { iss?: string }).iss ?? null
  } catch {
    return null
  }
}

export async function measureEdge(opts: {
  env: NodeJS.ProcessEnv
  connections: number
  durationS: number
  anon: LoadInput['requests']
  auth: LoadInput['requests'] | null
  redisUrl: string
  prefix: string
}): Promise<EdgeRun> {
  log('an edge node (skysift edge) in front of a publishing primary (skysift serve, SKYSIFT_EDGE_PUBLISH=1)…')
  const primary = await startServer({ ...opts.env, SKYSIFT_EDGE_PUBLISH: '1' }, 1)
  const redis = new Redis({ ...redisOptions(opts.redisUrl), lazyConnect: true })
  let edge: Awaited<ReturnType<typeof startServer>> | null = null
  try {
    const keys = edgeKeys(opts.prefix)
    // the primary publishes every feed's anonymous list within a beat of starting
    await waitFor(async () => (await redis.hlen(keys.anon)) > 0, 60_000, 'the anonymous lists published')
    edge = await startServer({ ...opts.env, SKYSIFT_PRIMARY_URL: primary.url }, 1, 'edge')
    const edgePid = edge.pids[0]
    const primaryPid = primary.pids[0]
    const run = async (name: string | null, requests: LoadInput['requests'], durationS: number) => {
      const cpu0 = [procCpuSeconds(edgePid) ?? 0, procCpuSeconds(primaryPid) ?? 0]
      const r = await runHelper<LoadResult>(
        LOAD,
        { url: edge!.url, connections: opts.connections, durationS, requests } satisfies LoadInput,
        (durationS + 60) * 1000,
      )
      const [edgeCpu, primaryCpu] = [edgePid, primaryPid].map((p, i) => round((100 * ((procCpuSeconds(p) ?? 0) - cpu0[i])) / r.durationS))
      if (name) {
        log(
          `  ${name} through the edge: ${Math.round(r.rps)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.non2xx + r.errors} non-2xx/errors; CPU edge ${edgeCpu}%, primary ${primaryCpu}%`,
        )
      }
      return { r, edgeCpu, primaryCpu }
    }
    await run(null, opts.anon, 3)
    const anon = await run('anonymous', opts.anon, opts.durationS)
    let auth: Awaited<ReturnType<typeof run>> | null = null
    let placed: number | null = null
    if (opts.auth?.length) {
      // each reader once through the edge: the edge tells the primary (touch), which places them (their list, their
      // overlay) and publishes it; then once more, so the edge has their placement and list in memory
      const t = performance.now()
      await warmEach(edge.url, opts.auth, edge.pids)
      const wanted = opts.auth.map((r) => ({ did: issuerOf(r.headers), feed: new URL(r.path, 'http://x').searchParams.get('feed') ?? '' }))
      const countPlaced = async () => {
        const m = redis.multi()
        for (const w of wanted) m.hexists(keys.reader(w.did ?? ''), readerFeedField(w.feed))
        return ((await m.exec()) ?? []).filter(([, v]) => v === 1).length
      }
      await waitFor(async () => (await countPlaced()) === wanted.length, 120_000, 'every signed-in reader placed by the primary').catch(() => {})
      placed = await countPlaced()
      await sleep(1000)
      await warmEach(edge.url, opts.auth, edge.pids)
      log(`  ${placed} of ${wanted.length} signed-in readers placed by the primary and read through the edge in ${round((performance.now() - t) / 1000, 1)} s`)
      auth = await run('signed in', opts.auth, opts.durationS)
    }
    return {
      ...loadFigures(anon.r, auth?.r ?? null),
      edge_cpu_ms_per_request: round((anon.edgeCpu * 10) / Math.max(1, anon.r.rps), 3),
      edge_auth_cpu_ms_per_request: auth ? round((auth.edgeCpu * 10) / Math.max(1, auth.r.rps), 3) : null,
      primary_cpu_pct: anon.primaryCpu,
      primary_auth_cpu_pct: auth?.primaryCpu ?? null,
      readers_placed: placed,
      edge_rss_mb: procRssMb(edgePid),
      primary_rss_mb: procRssMb(primaryPid),
    }
  } finally {
    if (edge) await stopChild(edge.child)
    await stopChild(primary.child)
    redis.disconnect()
  }
}

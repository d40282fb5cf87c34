/**
 * Serving with 1, 2, … processes on one port (SKYSIFT_SERVE_PROCESSES), for
 * `npm run bench`: `skysift serve` started as a process of its own on the
 * bench's SQLite file and Redis prefix, the same anonymous and signed-in
 * loads run against it, and per serving process its share of the requests
 * (from its report in Redis), its CPU and its memory.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { redisOptions } from '../src/contracts/queues.ts'
import { SERVED_BY_HEADER } from '../src/serve/processes.ts'
import { readProcessReports } from '../src/status/report.ts'
import type { LoadInput, LoadResult } from './load.ts'
import { log, procCpuSeconds, procRssMb, round, runHelper, sleep, stopChild, waitFor } from './util.ts'

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url))

export interface ServeProcessFigures {
  pid: number
  /** getFeedSkeleton requests this process answered (both loads and their warm-ups) */
  skeleton_requests: number
  /** this process's CPU over each load, % of one core */
  anon_cpu_pct: number
  auth_cpu_pct: number | null
  rss_mb: number | null
}

/** What an anonymous and a signed-in load against one server gave (the signed-in figures null without that load). */
export interface LoadFigures {
  serve_rps: number
  serve_p50_ms: number
  serve_p99_ms: number
  serve_auth_rps: number | null
  serve_auth_p50_ms: number | null
  serve_auth_p99_ms: number | null
  non2xx: number
}

/** LoadFigures of two loads (anonymous, then signed in when there was one). */
export function loadFigures(anon: LoadResult, auth: LoadResult | null): LoadFigures {
  return {
    serve_rps: Math.round(anon.rps),
    serve_p50_ms: anon.p50Ms,
    serve_p99_ms: anon.p99Ms,
    serve_auth_rps: auth ? Math.round(auth.rps) : null,
    serve_auth_p50_ms: auth?.p50Ms ?? null,
    serve_auth_p99_ms: auth?.p99Ms ?? null,
    non2xx: anon.non2xx + anon.errors + (auth ? auth.non2xx + auth.errors : 0),
  }
}

export interface ServeProcessesRun extends LoadFigures {
  processes: number
  /** CPU of all serving processes together per request (ms): unlike req/s, hardly moved by other work on the machine */
  serve_cpu_ms_per_request: number
  serve_auth_cpu_ms_per_request: number | null
  per_process: ServeProcessFigures[]
}

/** `skysift serve` (or `skysift edge`) with `n` processes; resolves once all listen. */
export async function startServer(
  env: NodeJS.ProcessEnv,
  n: number,
  command: 'serve' | 'edge' = 'serve',
): Promise<{ child: ChildProcess; url: string; pids: number[] }> {
  const child = spawn(process.execPath, [CLI, command], {
    env: { ...env, SKYSIFT_SERVE_PROCESSES: String(n), SKYSIFT_LOG_LEVEL: 'info', SKYSIFT_PORT: '0' },
    cwd: path.dirname(path.dirname(CLI)),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const serving: { pid: number; port: number }[] = []
  let buf = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8')
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      try {
        const l = JSON.parse(line) as { msg?: string; pid: number; port?: number; level?: number }
        if (l.msg === 'serving' && l.port) serving.push({ pid: l.pid, port: l.port })
        else if ((l.level ?? 0) >= 50) process.stderr.write(`${line}\n`)
      } catch {
        // not a log line
      }
    }
  })
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`skysift ${command} exited (${child.exitCode}) before listening`)
      return serving.length >= n
    },
    60_000,
    `${n} ${command} process(es)`,
  )
  return { child, url: `http://127.0.0.1:${serving[0].port}`, pids: serving.map((s) => s.pid) }
}

/**
 * Every request once in every serving process (signed-in readers: each process resolves the reader's DID document
 * and reads their lists once for itself, as for readers who came before): a connection of its own per attempt, until
 * each process has answered it. 16 at a time.
 */
export async function warmEach(url: string, requests: LoadInput['requests'], pids: number[]): Promise<void> {
  const u = new URL(url)
  const once = (r: LoadInput['requests'][number]) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path: r.path, headers: r.headers, agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(Number(res.headers[SERVED_BY_HEADER] ?? pids[0])))
      })
      req.on('error', reject)
      req.end()
    })
  let next = 0
  const worker = async () => {
    while (next < requests.length) {
      const r = requests[next++]
      const left = new Set(pids)
      for (let i = 0; i < 20 * pids.length && left.size; i++) left.delete(await once(r))
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

/**
 * For each count in `counts`: starts `skysift serve` with that many processes, warms it up, runs the anonymous load
 * then the signed-in one (when there are requests for it), and stops it.
 */
export async function measureServeProcesses(opts: {
  env: NodeJS.ProcessEnv
  counts: number[]
  connections: number
  durationS: number
  anon: LoadInput['requests']
  auth: LoadInput['requests'] | null
  redisUrl: string
  prefix: string
}): Promise<ServeProcessesRun[]> {
  const out: ServeProcessesRun[] = []
  const redis = new Redis({ ...redisOptions(opts.redisUrl), lazyConnect: true })
  try {
    for (const n of opts.counts) {
      log(`serve with ${n} process(es) of their own (skysift serve, SKYSIFT_SERVE_PROCESSES=${n})…`)
      const server = await startServer(opts.env, n)
      try {
        const run = async (name: string | null, requests: LoadInput['requests'], durationS: number) => {
          const cpu0 = server.pids.map((p) => procCpuSeconds(p) ?? 0)
          const r = await runHelper<LoadResult>(
            LOAD,
            { url: server.url, connections: opts.connections, durationS, requests } satisfies LoadInput,
            (durationS + 60) * 1000,
          )
          const cpu = server.pids.map((p, i) => round((100 * ((procCpuSeconds(p) ?? 0) - cpu0[i])) / r.durationS))
          if (name) {
            log(
              `  ${name}: ${Math.round(r.rps)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.non2xx + r.errors} non-2xx/errors; CPU ${cpu.map((c) => `${c}%`).join(' + ')}`,
            )
          }
          return { r, cpu }
        }
        // @NOTE a warm-up per server: each process resolves readers' DID documents and reads lists once for itself
        await run(null, opts.anon, 3)
        const anon = await run('anonymous', opts.anon, opts.durationS)
        let auth: Awaited<ReturnType<typeof run>> | null = null
        if (opts.auth?.length) {
          const t = performance.now()
          await warmEach(server.url, opts.auth, server.pids)
          log(`  warmed ${opts.auth.length} signed-in readers in each process in ${round((performance.now() - t) / 1000, 1)} s`)
          auth = await run('signed in', opts.auth, opts.durationS)
        }
        const cpuPerRequest = (x: { r: LoadResult; cpu: number[] }) => round((x.cpu.reduce((a, b) => a + b, 0) * 10) / Math.max(1, x.r.rps), 3)
        // each process reports its counts to Redis every 10 s: wait for reports made after the loads
        const after = Date.now()
        let reports: Awaited<ReturnType<typeof readProcessReports>> = []
        await waitFor(
          async () => {
            reports = (await readProcessReports(redis, opts.prefix)).filter((p) => server.pids.includes(p.pid))
            return reports.length === n && reports.every((p) => p.at >= after)
          },
          30_000,
          'process reports after the load',
          500,
        ).catch(() => log('  note: not every process reported after the load; request shares are from older reports'))
        out.push({
          processes: n,
          ...loadFigures(anon.r, auth?.r ?? null),
          serve_cpu_ms_per_request: cpuPerRequest(anon),
          serve_auth_cpu_ms_per_request: auth ? cpuPerRequest(auth) : null,
          per_process: server.pids.map((pid, i) => ({
            pid,
            skeleton_requests: reports.find((p) => p.pid === pid)?.serve?.skeleton.count ?? 0,
            anon_cpu_pct: anon.cpu[i],
            auth_cpu_pct: auth ? auth.cpu[i] : null,
            rss_mb: procRssMb(pid),
          })),
        })
      } finally {
        await stopChild(server.child)
        // the reports of the processes just stopped are removed as they stop; give Redis a moment
        await sleep(200)
      }
    }
  } finally {
    redis.disconnect()
  }
  return out
}

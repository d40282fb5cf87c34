import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Config } from '../config.ts'
import type { Logger } from '../logger.ts'

/*
 * More than one serving process on one machine. The first serving process
 * (the one `skysift start` or `skysift serve` runs in) listens with the
 * `reusePort` socket option and forks the others, which listen on the same
 * port with it too: the kernel spreads new connections over the processes,
 * and none of them forwards requests to another.
 *
 * @NOTE reusePort rather than node:cluster: with cluster the first process
 * accepts every connection and hands it over IPC, so the process that also
 * runs the store, the ingest and the refresh queue's producer would sit in
 * the path of every connection; with reusePort it is one peer among others.
 */

/** The header naming the serving process (its pid) on every response, when more than one process serves. */
export const SERVED_BY_HEADER = 'x-skysift-served-by'

type Fetch = (req: Request, env?: unknown) => Response | Promise<Response>

/** A fetch handler whose responses name this process (SERVED_BY_HEADER). */
export function withServedBy(fetch: Fetch, pid = process.pid): Fetch {
  const value = String(pid)
  const mark = (res: Response): Response => {
    try {
      res.headers.set(SERVED_BY_HEADER, value)
      return res
    } catch {
      // immutable headers (a response made elsewhere): a copy carries the header
      const copy = new Response(res.body, res)
      copy.headers.set(SERVED_BY_HEADER, value)
      return copy
    }
  }
  return (req, env) => {
    const res = fetch(req, env)
    return res instanceof Response ? mark(res) : res.then(mark)
  }
}

/** What a forked serving process is told (as its one argument, JSON). */
export interface ServePeerArgs {
  /** the port the first process listens on (its own setting may be 0: any free port) */
  port: number
  /** the first process's configuration, so every serving process answers alike (service DID, public URL, …) */
  config: Config
  /** which peer this is (1 …), for the logs */
  index: number
  /** what the processes serve: `serve` (next to the SQLite file, the default) or `edge` (from Redis only) */
  role?: 'serve' | 'edge'
}

const PEER_ENTRY = fileURLToPath(new URL('../../workers/serve-peer.ts', import.meta.url))

/** A peer that exits within this long of starting counts as a crash in a row; one that ran longer starts the count again. */
const STABLE_MS = 30_000
/** Crashes in a row after which a peer is not started again (the others keep serving). */
const MAX_CRASHES = 5
const FIRST_DELAY_MS = 1000
const MAX_DELAY_MS = 30_000

/**
 * Forks `count` serving processes listening on `port` with reusePort, each
 * restarted when it exits (after 1 s, doubling to 30 s while it keeps
 * crashing; given up after MAX_CRASHES quick exits in a row). stop() sends
 * SIGTERM to each and waits for them to exit.
 */
export function startServePeers(opts: { count: number; port: number; config: Config; log: Logger; role?: 'serve' | 'edge' }): {
  children: () => ChildProcess[]
  stop(): Promise<void>
} {
  const { log } = opts
  const live = new Map<number, ChildProcess>()
  const timers = new Set<NodeJS.Timeout>()
  let stopping = false
  const spawnPeer = (index: number, crashes: number) => {
    const args: ServePeerArgs = { port: opts.port, config: { ...opts.config, startRedis: 'never' }, index, ...(opts.role === 'edge' ? { role: 'edge' } : {}) }
    const startedAt = Date.now()
    // @NOTE a capped young generation, as for the other worker processes (see spawnWorker in stages.ts)
    const child = fork(PEER_ENTRY, [JSON.stringify(args)], { env: process.env, stdio: 'inherit', execArgv: [...process.execArgv, '--max-semi-space-size=16'] })
    live.set(index, child)
    child.on('exit', (code, signal) => {
      if (live.get(index) === child) live.delete(index)
      if (stopping) return
      const inARow = Date.now() - startedAt < STABLE_MS ? crashes + 1 : 1
      if (inARow >= MAX_CRASHES) {
        log.error({ peer: index, code, signal, crashes: inARow }, 'serving process keeps exiting; not restarted (the others still serve)')
        return
      }
      const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (inARow - 1))
      log.error({ peer: index, code, signal, delayMs: delay }, 'serving process exited; restarting')
      const t = setTimeout(() => {
        timers.delete(t)
        if (!stopping) spawnPeer(index, inARow)
      }, delay)
      t.unref()
      timers.add(t)
    })
  }
  for (let i = 1; i <= opts.count; i++) spawnPeer(i, 0)
  return {
    children: () => [...live.values()],
    async stop() {
      stopping = true
      for (const t of timers) clearTimeout(t)
      const all = [...live.values()]
      for (const c of all) c.kill('SIGTERM')
      await Promise.all(all.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)))
    },
  }
}

/** Metrics only the answering process knows (docs/operations.md: scope "process"); the rest are the same in every process. */
const PROCESS_SCOPED =
  /^(?:skysift_(?:build_info|redis_up|feed_cache_(?:hits|stale|misses)_total|skeleton_request_seconds|http_request_duration_seconds)|process_|nodejs_)/

/**
 * A Prometheus exposition with a `process` label (the pid) on every sample of
 * a process-scoped metric. With more than one serving process a scrape is
 * answered by any of them: labelled, each process's counters are series of
 * their own, which never seem to go back (`sum(rate(…))` adds them up), while
 * the figures every process reads alike (SQLite, Redis) keep one series.
 */
export function labelProcessScoped(body: string, pid = process.pid): string {
  const label = `process="${pid}"`
  return body
    .split('\n')
    .map((line) => {
      if (!line || line.startsWith('#') || !PROCESS_SCOPED.test(line)) return line
      const brace = line.indexOf('{')
      const space = line.indexOf(' ')
      if (brace >= 0 && brace < space) return `${line.slice(0, brace + 1)}${label},${line.slice(brace + 1)}`.replace(',}', '}')
      return `${line.slice(0, space)}{${label}}${line.slice(space)}`
    })
    .join('\n')
}

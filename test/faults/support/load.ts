/**
 * Load for the scenarios: a steady loop of requests (every response kept,
 * with its time) and autocannon runs in a child process, so the load
 * generator does not share an event loop with the test's own bookkeeping.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface Sample {
  /** ms since the epoch when the request was sent */
  at: number
  ms: number
  /** HTTP status, or 0 for a network error or timeout */
  status: number
  error?: string
}

/** `concurrency` loops sending `next()` until stopped. */
export function steadyLoad(
  next: () => { url: string; headers?: Record<string, string> },
  opts: { concurrency: number; timeoutMs: number; pauseMs?: number },
): { samples: Sample[]; stop(): Promise<Sample[]> } {
  const samples: Sample[] = []
  let stopping = false
  const loop = async () => {
    while (!stopping) {
      const { url, headers } = next()
      const at = Date.now()
      const t = performance.now()
      try {
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(opts.timeoutMs) })
        await res.arrayBuffer()
        samples.push({ at, ms: performance.now() - t, status: res.status })
      } catch (err) {
        samples.push({ at, ms: performance.now() - t, status: 0, error: (err as Error).message })
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs))
    }
  }
  const loops = Array.from({ length: opts.concurrency }, loop)
  return {
    samples,
    async stop() {
      stopping = true
      await Promise.all(loops)
      return samples
    },
  }
}

export interface CannonInput {
  url: string
  connections: number
  durationS: number
  requests: { path: string; headers?: Record<string, string> }[]
}

export interface CannonResult {
  requests: number
  rps: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  ok2xx: number
  non2xx: number
  errors: number
  timeouts: number
}

const CANNON = fileURLToPath(new URL('./cannon.ts', import.meta.url))

/** One autocannon run in a child process. */
export function cannon(input: CannonInput): Promise<CannonResult> {
  const child = fork(CANNON, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
  return new Promise<CannonResult>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        child.kill('SIGKILL')
        reject(new Error('autocannon did not finish'))
      },
      (input.durationS + 60) * 1000,
    )
    child.once('message', (m: { ok: boolean; result?: CannonResult; error?: string }) => {
      clearTimeout(timer)
      if (m.ok) resolve(m.result!)
      else reject(new Error(m.error))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`autocannon child exited (${code}) without an answer`))
    })
    child.send(input)
  })
}

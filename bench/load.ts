/**
 * Benchmark helper (child process): runs one autocannon load so the load
 * generator does not share an event loop with the server it measures.
 */
import autocannon from 'autocannon'
import { serveHelper } from './util.ts'

export interface LoadInput {
  url: string
  connections: number
  durationS: number
  requests: { path: string; headers?: Record<string, string> }[]
}

export interface LoadResult {
  rps: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  total: number
  ok2xx: number
  non2xx: number
  errors: number
  timeouts: number
  bytesPerResponse: number
  durationS: number
}

async function load(input: LoadInput): Promise<LoadResult> {
  const r = await autocannon({
    url: input.url,
    connections: input.connections,
    duration: input.durationS,
    pipelining: 1,
    timeout: 10,
    requests: input.requests.map((q) => ({ method: 'GET' as const, path: q.path, headers: q.headers })),
  })
  const total = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx']
  return {
    rps: total / r.duration,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    total,
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    bytesPerResponse: total ? r.throughput.total / total : 0,
    durationS: r.duration,
  }
}

serveHelper(load)

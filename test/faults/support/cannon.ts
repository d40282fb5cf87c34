/** Child process of `cannon()`: runs one autocannon load and sends back the figures. */
import autocannon from 'autocannon'
import type { CannonInput, CannonResult } from './load.ts'

process.once('message', (input: CannonInput) => {
  autocannon({
    url: input.url,
    connections: input.connections,
    duration: input.durationS,
    pipelining: 1,
    timeout: 10,
    requests: input.requests.map((q) => ({ method: 'GET' as const, path: q.path, headers: q.headers })),
  }).then(
    (r) => {
      const total = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx']
      const result: CannonResult = {
        requests: total,
        rps: total / r.duration,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        maxMs: r.latency.max,
        ok2xx: r['2xx'],
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
      }
      process.send!({ ok: true, result }, () => process.exit(0))
    },
    (err) => process.send!({ ok: false, error: String((err as Error)?.stack ?? err) }, () => process.exit(1)),
  )
})

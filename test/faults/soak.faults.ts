/**
 * Scenario 5 — soak. A replay at twice the live network's peak (~4,000
 * events/s, paced by the recorded event times) runs through the whole chain
 * (separate processes) for SOAK_S while a few readers ask for feeds. Every
 * few seconds: each process's RSS, both queue depths, and the ingest lag
 * (how far the newest stored event is behind its due time). After a
 * warm-up, the last third of the run must look like the first: RSS and
 * queue depth within 1.5× (plus a small absolute allowance for values near
 * zero), and the lag bounded and not growing.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { writeSyntheticJsonl } from '../../src/ingest/synthetic.ts'
import { steadyLoad } from './support/load.ts'
import { startPipeline } from './support/pipeline.ts'
import type { StageName } from './support/procs.ts'
import { SEED } from './support/rng.ts'
import { createScenario, mean, percentile, queues, report, round, size, sleep, type Scenario } from './support/scenario.ts'

const SOAK_S = size(60, 30 * 60)
const RATE = 4000
const SAMPLE_MS = size(2000, 5000)
const WARMUP_S = size(15, 120)

interface Sample {
  t: number
  rss: Partial<Record<StageName, number>>
  eventsWaiting: number
  storeWaiting: number
  lagS: number
  stored: number
}

const thirds = <T>(xs: T[]): [T[], T[]] => [xs.slice(0, Math.floor(xs.length / 3)), xs.slice(xs.length - Math.floor(xs.length / 3))]

describe('faults: soak at twice the live peak', () => {
  let sc: Scenario | undefined
  afterAll(async () => {
    await sc?.cleanup()
  })

  it(
    `${SOAK_S} s at ${RATE} events/s: RSS, queue depth and ingest lag stay flat`,
    async () => {
      const s = (sc = createScenario('soak'))
      const file = path.join(s.dir, 'events.jsonl')
      // a little more than the soak needs, so the replay never runs dry
      await writeSyntheticJsonl(file, { count: RATE * (SOAK_S + 30), seed: SEED % 100_000, eventsPerSecond: RATE })
      const head = Buffer.alloc(8192)
      const fd = fs.openSync(file, 'r')
      fs.readSync(fd, head, 0, head.length, 0)
      fs.closeSync(fd)
      const firstUs = JSON.parse(head.toString('utf8').split('\n')[0]).time_us as number
      const p = await startPipeline(s, { SKYSIFT_SOURCE: `replay:${file}#recorded`, SKYSIFT_LOG_LEVEL: 'warn' }, { file, ingest: false })
      const q = queues(s.redisUrl, s.prefix)
      s.onCleanup(() => q.close())
      const eventTime = p.db.prepare('SELECT event_time FROM cursors WHERE source = ?').pluck()
      const lastStoredTime = p.db.prepare("SELECT value FROM counters WHERE name = 'last_event_time'").pluck()
      p.startIngest()
      const t0 = Date.now()
      let i = 0
      const load = steadyLoad(
        () => ({ url: `${p.base}/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(p.feeds[i++ % p.feeds.length])}&limit=30` }),
        { concurrency: 2, timeoutMs: 10_000, pauseMs: 100 },
      )
      const samples: Sample[] = []
      try {
        while (Date.now() - t0 < SOAK_S * 1000) {
          await sleep(SAMPLE_MS)
          const c = p.crashed()
          if (c.length) throw new Error(c.join('\n'))
          const counts = await q.counts()
          const elapsedMs = Date.now() - t0
          // lag: how long ago the newest stored event was due (its offset in the file vs time since the replay began)
          const stored = Number(lastStoredTime.get() ?? 0)
          const lagS = stored ? Math.max(0, (elapsedMs - (stored - firstUs / 1000)) / 1000) : elapsedMs / 1000
          const rss: Partial<Record<StageName, number>> = {}
          for (const [name, proc] of Object.entries(p.procs) as [StageName, (typeof p.procs)[StageName]][]) rss[name] = proc.rssMb() ?? undefined
          samples.push({ t: elapsedMs / 1000, rss, eventsWaiting: counts.events.waiting, storeWaiting: counts.store.waiting, lagS, stored: p.stored() })
        }
      } finally {
        await load.stop()
      }
      const reqs = load.samples
      const cursorTime = Number(eventTime.get(p.source) ?? 0)
      const steady = samples.filter((x) => x.t >= WARMUP_S)
      const [first, last] = thirds(steady)
      const m = (xs: Sample[], f: (x: Sample) => number) => round(mean(xs.map(f)), 1)
      const stages: StageName[] = ['ingest', 'score', 'store', 'refresh', 'serve']
      // the mean of each sixth of the steady part too, so a report shows whether a process levels off or keeps growing
      const sixths = (st: StageName) =>
        Array.from({ length: 6 }, (_, i) =>
          m(steady.slice(Math.floor((i * steady.length) / 6), Math.floor(((i + 1) * steady.length) / 6)), (x) => x.rss[st] ?? 0),
        )
      const rssFigures = Object.fromEntries(
        stages.map((st) => [
          st,
          {
            first_third_mb: m(first, (x) => x.rss[st] ?? 0),
            last_third_mb: m(last, (x) => x.rss[st] ?? 0),
            max_mb: round(Math.max(...samples.map((x) => x.rss[st] ?? 0)), 1),
            by_sixth_mb: sixths(st),
          },
        ]),
      )
      const storedRate = (samples.at(-1)!.stored - steady[0].stored) / (samples.at(-1)!.t - steady[0].t)
      report('soak', {
        seed: SEED,
        duration_s: round((Date.now() - t0) / 1000),
        rate_target: RATE,
        events_stored: p.stored(),
        stored_per_s_after_warmup: round(storedRate),
        samples: samples.length,
        rss_mb: rssFigures,
        events_waiting: {
          first_third: m(first, (x) => x.eventsWaiting),
          last_third: m(last, (x) => x.eventsWaiting),
          max: Math.max(...samples.map((x) => x.eventsWaiting)),
        },
        store_waiting: {
          first_third: m(first, (x) => x.storeWaiting),
          last_third: m(last, (x) => x.storeWaiting),
          max: Math.max(...samples.map((x) => x.storeWaiting)),
        },
        lag_s: { first_third: m(first, (x) => x.lagS), last_third: m(last, (x) => x.lagS), max_after_warmup: round(Math.max(...steady.map((x) => x.lagS)), 1) },
        cursor_event_age_s: cursorTime ? round((Date.now() - t0) / 1000 - (cursorTime - firstUs / 1000) / 1000, 1) : null,
        requests: reqs.length,
        non_200: reqs.filter((r) => r.status !== 200).length,
        request_p99_ms: round(
          percentile(
            reqs.map((r) => r.ms),
            99,
          ),
        ),
      })
      expect(p.crashed()).toEqual([])
      expect(first.length).toBeGreaterThanOrEqual(3)
      expect(reqs.length).toBeGreaterThan(SOAK_S)
      expect(reqs.filter((r) => r.status !== 200).length).toBe(0)
      // the chain keeps up: stores about as fast as events arrive, lag bounded and not growing
      expect(storedRate).toBeGreaterThan(RATE * 0.8)
      expect(m(last, (x) => x.lagS)).toBeLessThanOrEqual(1.5 * m(first, (x) => x.lagS) + 5)
      expect(Math.max(...steady.map((x) => x.lagS))).toBeLessThan(30)
      // queues and memory flat
      expect(m(last, (x) => x.eventsWaiting)).toBeLessThanOrEqual(1.5 * m(first, (x) => x.eventsWaiting) + 5)
      expect(m(last, (x) => x.storeWaiting)).toBeLessThanOrEqual(1.5 * m(first, (x) => x.storeWaiting) + 5)
      for (const st of stages) {
        const f = rssFigures[st]
        expect(f.last_third_mb, `${st} RSS ${f.first_third_mb} → ${f.last_third_mb} MB`).toBeLessThanOrEqual(1.5 * f.first_third_mb)
      }
    },
    (SOAK_S + 600) * 1000,
  )
})

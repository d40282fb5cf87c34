/**
 * Anonymous previewMix with never-seen options, the way finding 1 of the
 * abuse review grew the serving process by ~1.9 MB a request and moved
 * another reader's median from 2 ms to 346 ms: 80 previews of 16 `keyword`
 * entries each, 4 at a time, against a real serving process.
 *
 * Bounds (SKYSIFT_AGENT_INSTANCES, SKYSIFT_PREVIEW_CANDIDATES, SKYSIFT_PREVIEW_QUEUE):
 *  - the process's RSS after the 80 previews is within 96 MB of the baseline, and the second 40 add
 *    at most 48 MB (a leak of the old size would add ~75 MB there and ~150 MB in all; the heap itself stays flat, the rest is V8 sizing it);
 *  - an anonymous reader's p50 while the previews run is within 6× and p99 within 12× of the same
 *    reader's alone (the same figures the review found at 173×);
 *  - no thread or open file stays behind; a burst past the queue is refused with 429, never a 5xx.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { FRESH, hammer, measure, quantile, report, startServer, type Server } from './support/serving.ts'

const PREVIEWS = 80
const CLIENTS = 4
const ENTRIES = 16

let seq = 0
/** A mix of 16 keyword entries whose options no one used before. */
const hostileMix = () => ({
  feed: FRESH,
  limit: 30,
  agents: Array.from({ length: ENTRIES }, (_, j) => ({
    agent: 'keyword',
    weight: 5,
    options: { include: [`zq${++seq}x${j}`, `coffee${seq}`], exclude: [`nope${seq}`] },
  })),
})

describe('abuse: anonymous previewMix with never-seen options', () => {
  let sv: Server
  beforeAll(async () => {
    sv = await startServer({ posts: 5000 })
  })

  const reader = async () => {
    const r = await sv.call('GET', 'app.bsky.feed.getFeedSkeleton', null, { feed: FRESH, limit: '30' })
    expect(r.status).toBe(200)
    return r.ms
  }
  const preview = async () => {
    const r = await sv.call('POST', 'app.skysift.feed.previewMix', null, hostileMix())
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.feed.length).toBeGreaterThan(0)
  }

  it(`${PREVIEWS} previews leave no memory, thread or file behind, and another reader keeps being served`, async () => {
    // warm-up: code paths compiled, the candidate list read, the reader's list cached
    for (let i = 0; i < 20; i++) await preview()
    await measure(reader, 1000)
    await sleep(5000) // idle keep-alive connections close
    const before = sv.stats()
    const alone = await measure(reader, 3000)

    let done = 0
    let half: ReturnType<Server['stats']> | null = null
    let finished = false
    const t0 = performance.now()
    const abuse = hammer(
      CLIENTS,
      async () => {
        await preview()
        if (++done === PREVIEWS / 2) half = sv.stats()
      },
      () => done >= PREVIEWS,
    ).then(() => (finished = true))
    // the other reader, all the while the previews run
    const samples: number[] = []
    while (!finished) samples.push(await reader())
    await abuse
    const after = sv.stats()
    const abuseS = (performance.now() - t0) / 1000
    samples.sort((a, b) => a - b)
    const underLoad = { n: samples.length, p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) }

    // a burst past the queue: refused at once, nothing breaks
    const burst = await Promise.all(Array.from({ length: 30 }, () => sv.call('POST', 'app.skysift.feed.previewMix', null, hostileMix())))
    const statuses = burst.map((r) => r.status)
    await sleep(5000)
    const settled = sv.stats()
    report('preview', {
      abuseS,
      before,
      half,
      after,
      settled,
      alone,
      underLoad,
      burst: { ok: statuses.filter((s) => s === 200).length, refused: statuses.filter((s) => s === 429).length },
    })

    expect(after.rssMb - before.rssMb).toBeLessThan(96)
    expect(after.rssMb - half!.rssMb).toBeLessThan(48)
    expect(underLoad.p50).toBeLessThan(6 * alone.p50)
    expect(underLoad.p99).toBeLessThan(12 * alone.p99)
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true)
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0)
    expect(settled.threads).toBeLessThanOrEqual(before.threads)
    expect(settled.fds).toBeLessThanOrEqual(before.fds + 2)
  })
})

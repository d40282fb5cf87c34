/**
 * submitAgent, the way finding 2 of the abuse review left a sandbox worker
 * thread (and 12–20 MB) in the serving process per accepted submission: one
 * author submits the same agent 20 times, then 10 more authors 3 times each,
 * against a real serving process with the default budgets.
 *
 * Bounds (SKYSIFT_SUBMIT_PER_AUTHOR_H = 5, SKYSIFT_SUBMIT_PER_H = 30):
 *  - attempts past an author's budget, and past everyone's, are refused with 429 before anything is loaded;
 *  - no thread stays behind, and RSS afterwards is within 128 MB of the baseline after 29 agents were loaded and
 *    closed (the review measured +252–398 MB for 20 submissions, every one leaving its thread; loading and closing
 *    an agent 90 times in one process leaves its heap and RSS flat after the first few);
 *  - an anonymous reader's p50 meanwhile is within 6× of the same reader's alone (the loads share its two cores).
 */
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import type { TestUser } from '../support/identity.ts'
import { FRESH, measure, quantile, report, startServer, type Server } from './support/serving.ts'

const GOOD = fs.readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'agents', 'good-agent.js'), 'utf8')
const OTHERS = Array.from({ length: 10 }, (_, i) => `author${i}`)

describe('abuse: submitAgent again and again', () => {
  let sv: Server
  beforeAll(async () => {
    sv = await startServer({ posts: 2000, users: ['warm', 'author', ...OTHERS] })
  })

  const anon = async () => {
    const r = await sv.call('GET', 'app.bsky.feed.getFeedSkeleton', null, { feed: FRESH, limit: '30' })
    expect(r.status).toBe(200)
    return r.ms
  }
  const submit = (who: TestUser, id: string) =>
    sv.call('POST', 'app.skysift.agent.submitAgent', who, { source: GOOD.replace("id: 'word-count'", `id: '${id}'`) })

  it('loads nothing that stays, and refuses attempts past the budgets', async () => {
    expect((await submit(sv.users.warm, 'warm-up')).status).toBe(200)
    await measure(anon, 500)
    await sleep(5000)
    const before = sv.stats()
    const alone = await measure(anon, 2000)

    let finished = false
    let mid: ReturnType<Server['stats']> | null = null
    const statuses: Record<string, number[]> = { author: [], others: [] }
    const abuse = (async () => {
      for (let i = 0; i < 20; i++) statuses.author.push((await submit(sv.users.author, 'same-agent')).status)
      await sleep(1000)
      mid = sv.stats()
      for (let round = 0; round < 3; round++) {
        for (const [i, name] of OTHERS.entries()) statuses.others.push((await submit(sv.users[name], `agent-${i}-${round}`)).status)
      }
    })().finally(() => (finished = true))
    const samples: number[] = []
    while (!finished) samples.push(await anon())
    await abuse
    samples.sort((a, b) => a - b)
    const during = { n: samples.length, p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) }
    await sleep(5000)
    const after = sv.stats()
    const count = (xs: number[], s: number) => xs.filter((x) => x === s).length
    report('submit', {
      before,
      mid,
      after,
      alone,
      during,
      author: { ok: count(statuses.author, 200), refused: count(statuses.author, 429) },
      others: { ok: count(statuses.others, 200), refused: count(statuses.others, 429) },
    })

    // 5 an author an hour; 30 in all (1 warm-up + 5 + 24 of the others)
    expect(statuses.author).toEqual([...Array(5).fill(200), ...Array(15).fill(429)])
    expect(count(statuses.others, 200)).toBe(24)
    expect(count(statuses.others, 429)).toBe(6)
    expect(after.threads).toBeLessThanOrEqual(before.threads)
    expect(after.rssMb - before.rssMb).toBeLessThan(128)
    expect(during.p50).toBeLessThan(6 * alone.p50)
  })
})

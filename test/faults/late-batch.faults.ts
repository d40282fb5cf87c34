/**
 * Scenario 6 — late batches: a replay with account status churn and post
 * edits woven in runs through the stages as separate processes; random
 * stages are killed with SIGKILL (score and store workers while they hold a
 * job, which BullMQ hands back only when its lock runs out, after later
 * batches were stored), and every process at once. At the end the store must
 * be exactly what the file says in its order: no post missing or extra, none
 * of an older version, every account in its last state, every count exact.
 */
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { writeSyntheticJsonl } from '../../src/ingest/synthetic.ts'
import { addChurn } from './support/churn.ts'
import { accounting, checkServed, checkStore, expectStoreMatchesModel, readListedFeed, StoreJobLog } from './support/checks.ts'
import { modelOfFile } from './support/model.ts'
import { startKillRun } from './support/pipeline.ts'
import type { StageName } from './support/procs.ts'
import { rng, SEED } from './support/rng.ts'
import { createScenario, report, round, size, sleep, until, type Scenario, settled } from './support/scenario.ts'

const EVENTS = size(40_000, 1_000_000)
const KILLS = size(4, 20)
const KILL_ALLS = size(1, 2)
/** account events and edits woven in, each, per line */
const CHURN = size(0.01, 0.003)
const BATCH = 500
const HIGH_WATER = 5
const STAGES: StageName[] = ['ingest', 'score', 'store', 'refresh', 'serve']

describe('faults: late batches (kill -9 while a job is held, kill-all) with account churn and edits', () => {
  let sc: Scenario | undefined
  afterAll(async () => {
    await sc?.cleanup()
  })

  it(
    `stores what the file says in its order: ${KILLS} kills and ${KILL_ALLS} kill-all in ${EVENTS} events`,
    async () => {
      const s = (sc = createScenario('late-batch'))
      const r = rng(SEED)
      const raw = path.join(s.dir, 'synthetic.jsonl')
      const file = path.join(s.dir, 'events.jsonl')
      await writeSyntheticJsonl(raw, { count: EVENTS, seed: SEED % 100_000 })
      const churn = await addChurn(raw, file, { seed: SEED, rate: CHURN })
      const model = await modelOfFile(file)
      const { p, q } = await startKillRun(s, file, { batch: BATCH, highWater: HIGH_WATER })
      const t0 = Date.now()
      const { procs, feeds, base, db, crashed, cursor, stored } = p
      // BullMQ keeps a completed job 10 minutes, 2,000 at most: a long run collects them as it goes
      const jobLog = new StoreJobLog()
      const collector = setInterval(() => void jobLog.collect(q.store).catch(() => {}), 20_000)
      s.onCleanup(() => clearInterval(collector))

      // at least one kill of each worker while it holds a job; the rest of any stage
      const targets = r.shuffle<StageName | 'all'>([
        'store',
        'score',
        ...Array.from({ length: KILLS - 2 }, () => r.pick(STAGES)),
        ...Array.from({ length: KILL_ALLS }, () => 'all' as const),
      ])
      const points = targets.map(() => 0.05 + 0.75 * r.next()).sort((a, b) => a - b)
      const kills: { stage: string; cursor: number; held: boolean; downMs: number }[] = []
      for (const [i, target] of targets.entries()) {
        const at = Math.floor(points[i] * model.lines)
        await until(
          `kill point ${i + 1} (${at} of ${model.lines})`,
          () => {
            const c = crashed()
            if (c.length) throw new Error(c.join('\n\n'))
            return cursor() >= at
          },
          size(300_000, 1_800_000),
          20,
        )
        let held = false
        if (target === 'store' || target === 'score') {
          // a job in its hands: it comes back only when its lock runs out, after later batches
          const queue = target === 'store' ? 'store' : 'events'
          held = await until(`${target} to hold a job`, async () => (await q.counts())[queue].active > 0, 10_000, 5).catch(() => false)
        }
        const victims = target === 'all' ? Object.values(procs) : [procs[target]]
        const cur = cursor()
        await Promise.all(victims.map((v) => v.kill9()))
        const downMs = r.int(1500)
        await sleep(downMs)
        for (const v of victims) v.start()
        kills.push({ stage: target, cursor: cur, held: !!held, downMs })
      }

      await until(
        'the whole file read and both queues drained',
        async () => {
          const c = crashed()
          if (c.length) throw new Error(c.join('\n\n'))
          return cursor() === model.lines && (await q.pending()) === 0
        },
        size(300_000, 1_800_000),
        200,
      )
      await settled(stored, () => q.pending())
      const elapsedS = (Date.now() - t0) / 1000
      const failedJobs = await q.failed()
      const check = checkStore(db, model)
      clearInterval(collector)
      const acc = await accounting(db, model, q.store, jobLog)
      const eventsStored = stored()

      // every feed paged to its end: only live posts, none twice in one feed (a post may be in several feeds)
      const served: string[] = []
      let repeated = 0
      for (const f of feeds) {
        const got = await readListedFeed(base, f)
        expect(
          got.statuses.every((st) => st === 200),
          f,
        ).toBe(true)
        served.push(...got.posts)
        repeated += got.posts.length - new Set(got.posts).size
      }
      const servedCheck = checkServed(db, model, served)

      report('late-batch', {
        seed: SEED,
        events: model.events,
        lines: model.lines,
        churn_account_events: churn.accountEvents,
        churn_edits: churn.edits,
        account_events: model.byKind.account ?? 0,
        kills: kills.length,
        kills_by_stage: Object.fromEntries([...STAGES, 'all'].map((st) => [st, kills.filter((k) => k.stage === st).length])),
        kills_holding_a_job: kills.filter((k) => k.held).length,
        elapsed_s: round(elapsedS),
        events_stored: eventsStored,
        duplicates_applied: eventsStored - model.events,
        duplicates_bound: acc.duplicateBound,
        store_jobs_rerun: acc.rerunJobs,
        store_batches_out_of_file_order: acc.reordered,
        event_lines_in_no_stored_batch: acc.uncoveredEventLines.length,
        failed_jobs: failedJobs,
        posts_model: check.strictPosts,
        posts_missing: check.missingPosts.length,
        posts_extra: check.extraPosts.length,
        posts_stale: check.stalePosts.length,
        posts_withheld_model: model.hidden.size,
        posts_withheld_wrong: check.badWithheld.length,
        accounts_model: model.accounts.size,
        accounts_wrong: check.wrongAccounts.length,
        likes_model: check.likesModel,
        likes_missing: check.likesMissing,
        likes_not_stored: acc.likesMissing.length,
        likes_over_counted: check.overCounted.length,
        served_items_checked: served.length,
        served_not_live: servedCheck.notLive.length + servedCheck.notStored.length,
        served_repeated_in_a_feed: repeated,
        kill_log: kills,
      })

      expect(crashed()).toEqual([])
      expect(kills).toHaveLength(KILLS + KILL_ALLS)
      // late batches happened: workers were killed holding jobs, and batches were stored out of file order
      expect(kills.filter((k) => k.held).length).toBeGreaterThanOrEqual(1)
      expect(acc.reordered).toBeGreaterThan(0)
      expect(churn.accountEvents).toBeGreaterThan(EVENTS * CHURN * 0.5)
      expect(churn.edits).toBeGreaterThan(EVENTS * CHURN * 0.5)
      // nothing skipped, nothing failed, duplicates only where the kills explain them
      expect(cursor()).toBe(model.lines)
      expect(failedJobs).toBe(0)
      expect(acc.uncoveredEventLines.slice(0, 10)).toEqual([])
      expect(eventsStored).toBeGreaterThanOrEqual(model.events)
      expect(eventsStored - model.events).toBeLessThanOrEqual(acc.duplicateBound)
      // the store is what the file says in its order: posts, versions, withheld posts, accounts, likes
      expect(model.hidden.size).toBeGreaterThan(0)
      expect(check.strictPosts).toBeGreaterThan(EVENTS * 0.04)
      expectStoreMatchesModel(check, acc.likesMissing)
      expect(servedCheck.notStored.slice(0, 10)).toEqual([])
      expect(servedCheck.notLive.slice(0, 10)).toEqual([])
      expect(repeated).toBe(0)
    },
    size(10, 60) * 60_000,
  )
})

/**
 * Scenario 1 — crash: the ingest, score and store stages run as separate
 * processes (`node workers/*.ts`) on a replay; at random moments one of them
 * is killed with SIGKILL (its whole process group) and started again. At the
 * end, with every process up and both queues drained, the store must equal
 * the independent model, the saved cursor must never have gone backwards, no
 * event may be skipped, and the feeds must serve only live posts.
 */
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { writeSyntheticJsonl } from '../../src/ingest/synthetic.ts'
import { checkServed, checkStore, accounting, readListedFeed, expectStoreMatchesModel } from './support/checks.ts'
import { modelOfFile } from './support/model.ts'
import { startKillRun } from './support/pipeline.ts'
import { rng, SEED } from './support/rng.ts'
import { createScenario, report, round, size, sleep, until, type Scenario, settled } from './support/scenario.ts'

const EVENTS = size(30_000, 200_000)
const KILLS = size(5, 20)
const BATCH = 500
const HIGH_WATER = 5

describe('faults: kill -9 of ingest, score and store during a replay', () => {
  let sc: Scenario | undefined
  afterAll(async () => {
    await sc?.cleanup()
  })

  it(
    `loses nothing and re-applies only what the kills explain: ${KILLS} kills in ${EVENTS} events`,
    async () => {
      const s = (sc = createScenario('crash'))
      const r = rng(SEED)
      const file = path.join(s.dir, 'events.jsonl')
      await writeSyntheticJsonl(file, { count: EVENTS, seed: SEED % 100_000 })
      const model = await modelOfFile(file)
      const { p, q } = await startKillRun(s, file, { batch: BATCH, highWater: HIGH_WATER })
      const t0 = Date.now()
      const { procs, feeds, base, db, crashed, cursor, stored } = p

      // cursor samples: the saved cursor must only move forward, across restarts too
      const cursorSamples: number[] = []
      const backwards: string[] = []
      let feedRequests = 0
      const feedStatuses: Record<string, number> = {}
      let lastFeedPoll = 0
      const sample = async () => {
        const c = cursor()
        const prev = cursorSamples.at(-1) ?? 0
        if (c < prev) backwards.push(`${prev} → ${c}`)
        cursorSamples.push(c)
        if (Date.now() - lastFeedPoll > 500) {
          lastFeedPoll = Date.now()
          const res = await fetch(`${base}/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(r.pick(feeds))}&limit=30`, {
            signal: AbortSignal.timeout(10_000),
          }).catch(() => null)
          feedRequests++
          const k = String(res?.status ?? 'error')
          feedStatuses[k] = (feedStatuses[k] ?? 0) + 1
          await res?.body?.cancel()
        }
        const c2 = crashed()
        if (c2.length) throw new Error(c2.join('\n\n'))
      }

      // kills at random points of the file read, spread over the three stages; two schedules (the ingest, the
      // workers) run side by side. @NOTE the workers' points follow the file too, not the events stored: the store
      // takes up to 8,000 events in one transaction, so stored progress jumps, and a point chosen on it could come
      // after the last event was stored; the ingest runs at most the high-water mark of jobs ahead of the workers
      const targets = r.shuffle(Array.from({ length: KILLS }, (_, i) => (['ingest', 'score', 'store'] as const)[i % 3]))
      const kills: { stage: string; at_stored: number; cursor: number; active: { events: number; store: number }; downMs: number }[] = []
      const schedule = async (stages: ('ingest' | 'score' | 'store')[], progress: () => number, total: number) => {
        const points = stages.map(() => 0.05 + 0.7 * r.next()).sort((a, b) => a - b)
        for (const [i, target] of stages.entries()) {
          const at = Math.floor(points[i] * total)
          await until(
            `${target} kill point ${i + 1} (${at} of ${total})`,
            async () => {
              await sample()
              return progress() >= at
            },
            300_000,
            20,
          )
          await sleep(r.int(300))
          const victim = procs[target]
          const c = await q.counts()
          const cur = cursor()
          const atStored = stored()
          await victim.kill9()
          const downMs = r.int(1500)
          await sleep(downMs)
          victim.start()
          kills.push({ stage: victim.name, at_stored: atStored, cursor: cur, active: { events: c.events.active, store: c.store.active }, downMs })
        }
      }
      await Promise.all([
        schedule(
          targets.filter((t) => t === 'ingest'),
          cursor,
          model.lines,
        ),
        schedule(
          targets.filter((t) => t !== 'ingest'),
          cursor,
          model.lines,
        ),
      ])

      // everything up, the whole file read, both queues empty, the counter still
      await until(
        'the whole file read and both queues drained',
        async () => {
          await sample()
          return cursor() === model.lines && (await q.pending()) === 0
        },
        300_000,
        200,
      )
      await settled(stored, () => q.pending(), sample)
      const elapsedS = (Date.now() - t0) / 1000
      const failedJobs = await q.failed()

      const check = checkStore(db, model)
      const acc = await accounting(db, model, q.store)
      const eventsStored = stored()
      const storeKills = kills.filter((k) => k.stage === 'store').length
      const ingestKills = kills.filter((k) => k.stage === 'ingest').length
      const ingestStarts = procs.ingest.logLines('ingest starting').map((l) => Number(l.cursor ?? 0))

      // the feeds: every item live, nothing twice
      const served: { feed: string; posts: string[]; statuses: number[]; check: ReturnType<typeof checkServed> }[] = []
      for (const f of feeds) {
        const got = await readListedFeed(base, f)
        served.push({ feed: f, ...got, check: checkServed(db, model, got.posts) })
      }
      const servedCheck = {
        notStored: served.flatMap((x) => x.check.notStored),
        notLive: served.flatMap((x) => x.check.notLive),
        repeated: served.reduce((n, x) => n + x.check.repeated, 0),
      }

      const figures = {
        seed: SEED,
        events: model.events,
        lines: model.lines,
        kills: kills.length,
        kills_by_stage: { ingest: ingestKills, score: kills.filter((k) => k.stage === 'score').length, store: storeKills },
        elapsed_s: round(elapsedS),
        events_stored: eventsStored,
        duplicates_applied: eventsStored - model.events,
        duplicates_bound: acc.duplicateBound,
        store_jobs_rerun: acc.rerunJobs,
        store_jobs_checked: acc.storeJobs,
        event_lines_in_no_stored_batch: acc.uncoveredEventLines.length,
        failed_jobs: failedJobs,
        posts_model: check.strictPosts,
        posts_missing: check.missingPosts.length,
        posts_extra: check.extraPosts.length,
        posts_stale: check.stalePosts.length,
        posts_withheld_wrong: check.badWithheld.length,
        accounts_model: model.accounts.size,
        accounts_wrong: check.wrongAccounts.length,
        likes_model: check.likesModel,
        likes_missing: check.likesMissing,
        likes_not_stored: acc.likesMissing.length,
        likes_over_counted: check.overCounted.length,
        store_batches_out_of_file_order: acc.reordered,
        cursor_samples: cursorSamples.length,
        cursor_went_backwards: backwards.length,
        ingest_restart_cursors: ingestStarts,
        feed_requests_during_run: feedRequests,
        feed_statuses_during_run: feedStatuses,
        served_items_checked: served.reduce((n, x) => n + x.posts.length, 0),
        served_not_live: servedCheck.notLive.length + servedCheck.notStored.length,
        kill_log: kills,
      }
      report('crash', figures)

      expect(crashed()).toEqual([])
      expect(kills).toHaveLength(KILLS)
      expect(new Set(kills.map((k) => k.stage))).toEqual(new Set(KILLS >= 3 ? ['ingest', 'score', 'store'] : kills.map((k) => k.stage)))
      // every kill hit a stage with work left: ingest before the end of the file, workers before the last event was stored
      for (const k of kills)
        expect(k.stage === 'ingest' ? k.cursor : k.at_stored, JSON.stringify(k)).toBeLessThan(k.stage === 'ingest' ? model.lines : model.events)
      // the saved cursor only moves forward, every restart resumed from it, and the whole file was read
      expect(backwards).toEqual([])
      expect(cursor()).toBe(model.lines)
      for (let i = 1; i < ingestStarts.length; i++) expect(ingestStarts[i]).toBeGreaterThanOrEqual(ingestStarts[i - 1])
      // no event skipped: every event line of the file is in a stored batch, no job failed for good, and the store
      // counted at least every event; events counted twice are no more than the batches that were taken again after a
      // crash (a group killed between its commit and its acknowledgement) or read twice by a restarted ingest
      expect(failedJobs).toBe(0)
      expect(acc.uncoveredEventLines.slice(0, 10)).toEqual([])
      expect(eventsStored).toBeGreaterThanOrEqual(model.events)
      expect(eventsStored - model.events).toBeLessThanOrEqual(acc.duplicateBound)
      // posts: exactly the model's live set, each once
      // posts and likes: exactly the model's
      expect(check.strictPosts).toBeGreaterThan(EVENTS * 0.04)
      expectStoreMatchesModel(check, acc.likesMissing)
      // feeds: answered throughout, and only live posts, none twice
      expect(Object.keys(feedStatuses).filter((k) => k !== '200')).toEqual([])
      for (const x of served) {
        expect(
          x.statuses.every((st) => st === 200),
          x.feed,
        ).toBe(true)
        expect(x.posts.length, x.feed).toBeGreaterThan(0)
      }
      expect(servedCheck.notStored.slice(0, 10)).toEqual([])
      expect(servedCheck.notLive.slice(0, 10)).toEqual([])
      expect(servedCheck.repeated).toBe(0)
    },
    size(10, 45) * 60_000,
  )
})

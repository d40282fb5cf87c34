/**
 * Scenario 3 — bad input.
 *
 *  1. Fuzzed Jetstream lines (malformed JSON, wrong types, huge text and
 *     lines, invalid UTF-8, lone surrogates, unknown kinds and collections,
 *     bad CIDs / URIs / DIDs / record keys, deep nesting, giant numbers)
 *     interleaved with valid synthetic events, replayed through the real
 *     chain (separate processes): no process may die, every valid event must
 *     be stored (model check), every reject counted and the newest ones kept
 *     in `rejected_events` with their payload.
 *  2. Hostile HTTP requests against the running server: no 5xx; every bad
 *     token on getFeedSkeleton is served the anonymous page; every bad
 *     request a lexicon-shaped error (`{error, message}`) with the right
 *     status (400 bad input, 401 bad token on a private method, 404 unknown
 *     method, 413 oversized body); traversal paths leak nothing.
 */
import path from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { redisOptions } from '../../src/contracts/queues.ts'
import { readProcessReports } from '../../src/status/report.ts'
import { startIdentities } from '../support/identity.ts'
import { checkStore, accounting, expectStoreMatchesModel } from './support/checks.ts'
import { writeFuzzFile } from './support/fuzz.ts'
import { hostileRequests, judge, send } from './support/hostile.ts'
import { ModelBuilder } from './support/model.ts'
import { startPipeline, type Pipeline } from './support/pipeline.ts'
import { SEED } from './support/rng.ts'
import { createScenario, queues, report, round, size, until, type Scenario } from './support/scenario.ts'

const FUZZ = size(10_000, 100_000)
const VALID = size(10_000, 50_000)
const REQUESTS = size(2_000, 10_000)
const MAX_REJECTS_KEPT = 10_000

describe('faults: bad input through the real chain and at the HTTP server', () => {
  let sc: Scenario | undefined
  let p: Pipeline | undefined
  afterAll(async () => {
    await sc?.cleanup()
  })

  it(
    `${FUZZ} fuzzed Jetstream lines among ${VALID} valid ones: nothing crashes, valid events stored, rejects counted and kept`,
    async () => {
      const s = (sc = createScenario('badinput'))
      const file = path.join(s.dir, 'fuzz.jsonl')
      const t0 = Date.now()
      const fz = await writeFuzzFile(file, { fuzz: FUZZ, valid: VALID, seed: SEED % 100_000 })
      const mb = new ModelBuilder()
      for (const l of fz.storedLines) mb.add(l.line, undefined, l.n)
      const model = mb.build()
      // a long cache TTL keeps the anonymous page fixed for the HTTP part
      p = await startPipeline(s, { SKYSIFT_SOURCE: `replay:${file}`, SKYSIFT_BATCH_SIZE: '250', SKYSIFT_CACHE_TTL_S: '86400' }, { file })
      const q = queues(s.redisUrl, s.prefix)
      s.onCleanup(() => q.close())
      const pp = p
      await until(
        'the whole file read and the queues drained',
        async () => {
          const c = pp.crashed()
          if (c.length) throw new Error(c.join('\n'))
          return pp.cursor() === fz.lines && (await q.pending()) === 0 && pp.stored() >= model.events
        },
        size(180, 900) * 1000,
        500,
      )
      // the ingest's own count of rejects, from its process report (published every 10 s)
      const redis = new Redis({ ...redisOptions(s.redisUrl), maxRetriesPerRequest: 1 })
      s.onCleanup(() => redis.disconnect())
      const ingestReport = await until(
        'the ingest report to count every line',
        async () => {
          for (const rep of await readProcessReports(redis, s.prefix)) {
            if (rep.ingest && rep.ingest.received >= fz.lines - 0) return rep.ingest
          }
          return null
        },
        30_000,
        1000,
      )
      const db = p.db
      const keptRows = db.prepare('SELECT reason, payload FROM rejected_events ORDER BY id').all() as { reason: string; payload: string }[]
      const maxId = Number(db.prepare('SELECT coalesce(max(id), 0) FROM rejected_events').pluck().get())
      const reasons: Record<string, number> = {}
      for (const r of keptRows) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1
      const check = checkStore(db, model)
      const acc = await accounting(db, model, q.store)
      const acceptedFuzz = fz.storedLines.length - VALID
      const odd = db.prepare("SELECT text FROM posts WHERE author LIKE 'did:plc:fz99%'").pluck().all() as string[]
      const R = fz.expected.reject
      const keptWant = R < MAX_REJECTS_KEPT ? R : MAX_REJECTS_KEPT + (R % 1000)
      report('bad-input-jetstream', {
        seed: SEED,
        lines: fz.lines,
        fuzz_lines: fz.fuzz,
        valid_lines: fz.valid,
        fuzz_kinds: Object.keys(fz.byKind).length,
        expected: fz.expected,
        rejects_counted_by_ingest: ingestReport.rejected,
        rejects_total_ids: maxId,
        rejects_kept: keptRows.length,
        rejects_kept_expected: keptWant,
        reject_reasons_kept: reasons,
        events_model: model.events,
        events_stored: p.stored(),
        posts_model: check.strictPosts,
        posts_missing: check.missingPosts.length,
        posts_extra: check.extraPosts.length,
        accepted_fuzz_posts_stored: odd.length,
        likes_not_stored: acc.likesMissing.length,
        crashes: p.crashed().length,
        elapsed_s: round((Date.now() - t0) / 1000),
      })
      expect(p.crashed()).toEqual([])
      for (const proc of Object.values(p.procs)) expect(proc.running, proc.name).toBe(true)
      // every reject counted, the newest kept with their payload, in order
      expect(ingestReport.rejected).toBe(R)
      expect(maxId).toBe(R)
      expect(keptRows.length).toBe(keptWant)
      const wantPayloads = fz.lastRejects.slice(-keptRows.length)
      const wrongPayload = keptRows.findIndex((row, i) => row.payload !== wantPayloads[i])
      expect(
        wrongPayload,
        wrongPayload >= 0
          ? `kept reject ${wrongPayload}: ${keptRows[wrongPayload].reason} ${keptRows[wrongPayload].payload.slice(0, 200)} ≠ ${wantPayloads[wrongPayload]?.slice(0, 200)}`
          : '',
      ).toBe(-1)
      for (const row of keptRows) expect(row.reason.length).toBeGreaterThan(0)
      // every valid event in between stored, and only those
      expect(p.stored()).toBe(model.events)
      expect(await q.failed()).toBe(0)
      expect(acc.uncoveredEventLines.slice(0, 10)).toEqual([])
      expectStoreMatchesModel(check, acc.likesMissing)
      // the odd but valid posts are there, with well-formed text
      expect(odd.length).toBe(
        fz.storedLines.filter((l) => l.line.includes('"app.bsky.feed.post"') && l.line.includes('"create"') && l.line.includes('"did":"did:plc:fz99')).length,
      )
      expect(acceptedFuzz).toBeGreaterThan(0)
      for (const t of odd) expect(t.isWellFormed()).toBe(true)
    },
    size(8, 30) * 60_000,
  )

  it(
    `${REQUESTS} hostile HTTP requests: no 5xx, bad tokens served as anonymous, lexicon-shaped 400/401/404/413`,
    async () => {
      expect(p, 'the server from the first test').toBeDefined()
      const s = sc!
      const pl = p!
      const ids = await startIdentities(['alice', 'bob'])
      s.onCleanup(ids.close)
      const serviceDid = `did:web:localhost%3A${pl.port}`
      // the anonymous page of each feed, which every bad token must get
      const anon = new Map<string, { posts: string[]; fingerprint: string | undefined }>()
      for (const f of pl.feeds) {
        const res = await fetch(`${pl.base}/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(f)}&limit=30`)
        expect(res.status).toBe(200)
        const body = (await res.json()) as { feed: { post: string; feedContext: string }[] }
        expect(body.feed.length).toBeGreaterThan(0)
        anon.set(f, { posts: body.feed.map((x) => x.post), fingerprint: body.feed[0]?.feedContext.split('|')[1] })
      }
      // a valid token is honoured (alice has no mix: she gets the default, under her own name)
      const ok = await fetch(`${pl.base}/xrpc/app.skysift.feed.getMix?feed=${encodeURIComponent(pl.feeds[0])}`, {
        headers: { authorization: `Bearer ${await ids.users.alice.token(serviceDid, 'app.skysift.feed.getMix')}` },
      })
      expect(ok.status, await ok.clone().text()).toBe(200)

      const next = await hostileRequests({ serviceDid, feeds: pl.feeds, alice: ids.users.alice, bob: ids.users.bob }, SEED)
      const byKind: Record<string, { n: number; statuses: Record<string, number> }> = {}
      const problems: string[] = []
      let fivexx = 0
      let anonServed = 0
      let sent = 0
      const t0 = Date.now()
      const worker = async () => {
        while (sent < REQUESTS) {
          sent++
          const req = next()
          const k = (byKind[req.kind] ??= { n: 0, statuses: {} })
          k.n++
          let status = 0
          try {
            const res = await send(pl.base, req)
            status = res.status
            if (res.status >= 500) fivexx++
            const why = judge(req, res, anon)
            if (why) problems.push(`${req.kind}: ${req.method} ${req.path.slice(0, 120)} → ${why}`)
            else if (req.expect.anonymous) anonServed++
          } catch (err) {
            problems.push(`${req.kind}: ${req.method} ${req.path.slice(0, 120)} → ${(err as Error).message}`)
          }
          k.statuses[status] = (k.statuses[status] ?? 0) + 1
        }
      }
      await Promise.all(Array.from({ length: 16 }, worker))
      const badTokenSkeletons = Object.entries(byKind)
        .filter(([k]) => /^skeleton, .* token$/.test(k))
        .reduce((n, [, v]) => n + v.n, 0)
      report('bad-input-http', {
        seed: SEED,
        requests: sent,
        kinds: Object.keys(byKind).length,
        server_errors_5xx: fivexx,
        problems: problems.length,
        bad_token_skeletons: badTokenSkeletons,
        served_as_anonymous: anonServed,
        elapsed_s: round((Date.now() - t0) / 1000),
        statuses_by_kind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, v.statuses])),
        first_problems: problems.slice(0, 5),
      })
      expect(pl.crashed()).toEqual([])
      expect(fivexx).toBe(0)
      expect(problems.slice(0, 10)).toEqual([])
      expect(anonServed).toBeGreaterThanOrEqual(badTokenSkeletons)
      expect(Object.keys(byKind).length).toBeGreaterThanOrEqual(20)
    },
    size(5, 20) * 60_000,
  )
})

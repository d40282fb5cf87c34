/**
 * Scenario — edge: the primary (the serving process next to the SQLite file,
 * publishing for edge nodes with SKYSIFT_EDGE_PUBLISH) and an edge node that
 * needs only Redis (`skysift edge`, its SQLite path in a folder that does not
 * exist). Readers, anonymous and signed in, read through the edge without a
 * pause while the primary is killed with SIGKILL and kept down, several times.
 * Meanwhile readers send feedback through the edge, and posts are deleted
 * (a second replay of delete commits, stored by the store stage, which keeps
 * running). The edge must answer every page all along, with the lists it
 * served before; the feedback must all be stored once the primary is back,
 * none lost; what only the primary can do (saving a mix) must be refused with
 * a clear error while it is down; and once it is back, the deletions made
 * meanwhile must leave the edge's pages within the documented bound, and
 * every page must hold only live posts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { writeSyntheticJsonl } from '../../src/ingest/synthetic.ts'
import { tid } from '../support/builders.ts'
import { startIdentities, type TestUser } from '../support/identity.ts'
import { checkServed, readListedFeed, readWholeFeed } from './support/checks.ts'
import { steadyLoad, type Sample } from './support/load.ts'
import { modelOfFile } from './support/model.ts'
import { startPipeline } from './support/pipeline.ts'
import { freePort, Proc, ROOT } from './support/procs.ts'
import { rng, SEED } from './support/rng.ts'
import { createScenario, percentile, report, round, size, sleep, until, type Scenario } from './support/scenario.ts'

const EVENTS = size(20_000, 100_000)
const OUTAGES = size(2, 4)
const DOWN_MS = size(5000, 10_000)
const READERS = 8
/** posts deleted while the primary is down, per outage (at most half of the page shown) */
const DELETES = 10
/** how long after the primary answers again a deletion made while it was down may still be served by the edge (docs/scaling.md) */
const DELETION_BOUND_MS = 5000

const SKELETON = 'app.bsky.feed.getFeedSkeleton'
const INTERACTIONS = 'app.bsky.feed.sendInteractions'
const PUT_MIX = 'app.skysift.feed.putMix'

describe('faults: kill -9 of the primary while an edge node serves', () => {
  let sc: Scenario | undefined
  afterAll(async () => {
    await sc?.cleanup()
  })

  it(`serves every page through ${OUTAGES} kills of the primary, loses no feedback, and drops deletions made meanwhile`, async () => {
    const s = (sc = createScenario('edge'))
    const r = rng(SEED)
    const file = path.join(s.dir, 'events.jsonl')
    await writeSyntheticJsonl(file, { count: EVENTS, seed: SEED % 100_000 })
    const model = await modelOfFile(file)
    const p = await startPipeline(s, { SKYSIFT_SOURCE: `replay:${file}`, SKYSIFT_EDGE_PUBLISH: '1', SKYSIFT_CACHE_TTL_S: '3' }, { file })
    await until('the whole file stored', () => p.cursor() === model.lines, 300_000, 500)
    const serviceDid = ((await (await fetch(`${p.base}/.well-known/did.json`)).json()) as { id: string }).id

    // the edge: another port, the primary's identity, no SQLite file it could open
    const edgePort = await freePort()
    const noDb = path.join(s.dir, 'no-such-folder', 'edge.db')
    const edge = new Proc(
      'edge',
      [path.join(ROOT, 'src/cli.ts'), 'edge'],
      {
        ...p.env,
        SKYSIFT_PORT: String(edgePort),
        SKYSIFT_PUBLIC_URL: p.env.SKYSIFT_PUBLIC_URL!,
        SKYSIFT_SERVICE_DID: serviceDid,
        SKYSIFT_PRIMARY_URL: p.base,
        SKYSIFT_DB_PATH: noDb,
      },
      path.join(s.dir, 'edge.log'),
    ).start()
    const edgeBase = `http://127.0.0.1:${edgePort}`
    await until(
      'the edge to serve a page',
      async () => {
        if (!edge.running) throw new Error(`the edge exited:\n${edge.tail()}`)
        const res = await fetch(`${edgeBase}/xrpc/${SKELETON}?feed=${encodeURIComponent(p.feeds[0])}&limit=10`).catch(() => null)
        return res?.status === 200 && ((await res.json()) as { feed: unknown[] }).feed.length > 0
      },
      60_000,
      500,
    )

    // signed-in readers with real did:web identities; each reads once so the primary places them
    const ids = await startIdentities(Array.from({ length: READERS }, (_, i) => `edge${i}`))
    s.onCleanup(ids.close)
    const users: TestUser[] = Object.values(ids.users)
    const exp = Math.floor(Date.now() / 1000) + 3600
    const tokens = new Map<TestUser, string>()
    for (const u of users) tokens.set(u, await u.token(serviceDid, SKELETON, { exp }))
    const pageUrl = (feed: string) => `${edgeBase}/xrpc/${SKELETON}?feed=${encodeURIComponent(feed)}&limit=30`
    for (const u of users) for (const f of p.feeds) await fetch(pageUrl(f), { headers: { authorization: `Bearer ${tokens.get(u)}` } })

    // reads without a pause, half of them signed in
    const load = steadyLoad(
      () => {
        const u = r.next() < 0.5 ? r.pick(users) : null
        return { url: pageUrl(r.pick(p.feeds)), headers: u ? { authorization: `Bearer ${tokens.get(u)}` } : undefined }
      },
      { concurrency: 4, timeoutMs: 10_000, pauseMs: 20 },
    )

    const sendFeedback = async (u: TestUser, feed: string, item: string) => {
      const res = await fetch(`${edgeBase}/xrpc/${INTERACTIONS}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await u.token(serviceDid, INTERACTIONS)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ feed, interactions: [{ item, event: 'app.bsky.feed.defs#requestLess' }] }),
      })
      return res.status
    }
    const sent: { did: string; item: string; status: number; primaryDown: boolean }[] = []
    const deleted: string[] = []
    const outages: {
      down_ms: number
      primary_answered_while_down: number
      put_mix_status: number
      put_mix_error: string
      primary_start_ms: number
      deletion_gone_after_ms: number
    }[] = []

    for (let o = 0; o < OUTAGES; o++) {
      // what the edge serves now: the posts to delete while the primary is down, and feedback to send
      const feed = r.pick(p.feeds)
      const shown = ((await (await fetch(pageUrl(feed))).json()) as { feed: { post: string }[] }).feed.map((i) => i.post)
      // @NOTE at most half of what is shown: a small feed (a topic feed of a short file holds 10–40 posts) picked for
      // every outage must not be emptied, as the whole of each feed is read at the end
      const victims = shown.filter((u) => !deleted.includes(u)).slice(0, Math.min(DELETES, Math.floor(shown.length / 2)))
      expect(victims.length).toBeGreaterThan(0)

      await p.procs.serve.kill9()
      const downAt = Date.now()
      let primaryAnswered = 0
      const probe = await fetch(`${p.base}/xrpc/_health`, { signal: AbortSignal.timeout(1000) }).catch(() => null)
      if (probe) primaryAnswered++

      // deletions stored while the primary is down (the store stage keeps running): a replay of delete commits
      const deletes = path.join(s.dir, `deletes-${o}.jsonl`)
      fs.writeFileSync(
        deletes,
        victims
          .map((uri, i) => {
            const [, , did, collection, rkey] = uri.split('/')
            return JSON.stringify({
              did,
              time_us: Date.now() * 1000 + i,
              kind: 'commit',
              commit: { rev: tid(Date.now(), i), operation: 'delete', collection, rkey },
            })
          })
          .join('\n') + '\n',
      )
      await p.procs.ingest.stop()
      p.procs.ingest.env = { ...p.procs.ingest.env, SKYSIFT_SOURCE: `replay:${deletes}` }
      p.procs.ingest.start()
      deleted.push(...victims)

      // feedback through the edge while the primary is down: accepted (queued for it)
      for (const u of users.slice(0, 3)) {
        const item = r.pick(shown)
        sent.push({ did: u.did, item, status: await sendFeedback(u, feed, item), primaryDown: true })
      }
      // saving a mix needs the primary: refused, saying so
      const put = await fetch(`${edgeBase}/xrpc/${PUT_MIX}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await users[0].token(serviceDid, PUT_MIX)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ feed, agents: [{ agent: 'recency', weight: 50 }] }),
      })
      const putBody = (await put.json()) as { error?: string; message?: string }

      await sleep(Math.max(0, DOWN_MS - (Date.now() - downAt)))
      p.procs.serve.start()
      const upAt = Date.now()
      await until('the primary to answer again', async () => (await fetch(`${p.base}/xrpc/_health`).catch(() => null))?.status === 200, 60_000, 200)
      const healthyAt = Date.now()
      // the deletions leave the edge's pages (anonymous and signed in) within the bound, counted from the restart
      await until(
        'the deletions made while the primary was down to leave the edge',
        async () => {
          for (const f of p.feeds) {
            for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${tokens.get(users[1])}` }]) {
              const got = ((await (await fetch(pageUrl(f), { headers })).json()) as { feed: { post: string }[] }).feed
              if (got.some((i) => victims.includes(i.post))) return false
            }
          }
          return true
        },
        60_000,
        100,
      )
      outages.push({
        down_ms: upAt - downAt,
        primary_answered_while_down: primaryAnswered,
        put_mix_status: put.status,
        put_mix_error: putBody.error ?? '',
        primary_start_ms: healthyAt - upAt,
        deletion_gone_after_ms: Date.now() - healthyAt,
      })
      // feedback with the primary up, too
      for (const u of users.slice(3, 5)) {
        const item = r.pick(shown)
        sent.push({ did: u.did, item, status: await sendFeedback(u, feed, item), primaryDown: false })
      }
    }

    const samples: Sample[] = await load.stop()
    // every piece of feedback the edge accepted is stored, once the primary drained the queue
    const storedFeedback = await until(
      'every accepted piece of feedback stored',
      () => {
        const rows = p.db.prepare("SELECT subscriber, post_uri FROM interactions WHERE event = 'less'").all() as { subscriber: string; post_uri: string }[]
        const have = new Set(rows.map((x) => `${x.subscriber} ${x.post_uri}`))
        return sent.every((x) => have.has(`${x.did} ${x.item}`)) ? rows.length : null
      },
      60_000,
      500,
    )
    // the whole of each feed through the edge: only live posts, nothing twice, none of the deleted
    const served: { feed: string; check: ReturnType<typeof checkServed>; deletedServed: number; pages: number }[] = []
    for (const f of p.feeds) {
      const got = await readListedFeed(edgeBase, f).catch(async (err: Error) => {
        // where the list went empty: the primary's own pages of the feed, and the edge's log
        const primary = await readWholeFeed(p.base, f).catch((e: Error) => ({ posts: [], pages: 0, statuses: [e.message] }))
        throw new Error(
          `${err.message}\nthe primary lists ${primary.posts.length} posts of it (statuses ${primary.statuses.join(',')})\nedge log:\n${edge.tail(60)}\nprimary log:\n${p.procs.serve.tail(60)}\nrefresh log:\n${p.procs.refresh.tail(30)}`,
        )
      })
      const deletedSet = new Set(deleted)
      served.push({
        feed: f,
        check: checkServed(p.db, { ...model, posts: liveModel(model, deletedSet) }, got.posts),
        deletedServed: got.posts.filter((u) => deletedSet.has(u)).length,
        pages: got.pages,
      })
    }
    const signedIn = await readWholeFeed(edgeBase, p.feeds[0])

    const byStatus: Record<string, number> = {}
    for (const x of samples) byStatus[String(x.status)] = (byStatus[String(x.status)] ?? 0) + 1
    const figures = {
      seed: SEED,
      events: model.events,
      outages,
      edge_requests: samples.length,
      edge_statuses: byStatus,
      edge_p99_ms: round(
        percentile(
          samples.map((x) => x.ms),
          99,
        ),
      ),
      feedback_sent: sent.length,
      feedback_accepted_while_primary_down: sent.filter((x) => x.primaryDown && x.status === 200).length,
      feedback_stored_rows: storedFeedback,
      deleted_while_down: deleted.length,
      served: served.map((x) => ({
        feed: x.feed.split('/').pop(),
        pages: x.pages,
        not_live: x.check.notLive.length,
        not_stored: x.check.notStored.length,
        repeated: x.check.repeated,
        deleted_served: x.deletedServed,
      })),
      edge_sqlite_created: fs.existsSync(path.dirname(noDb)),
      edge_rss_mb: edge.rssMb(),
      primary_starts: p.procs.serve.starts,
    }
    report('edge', figures)

    expect(p.crashed()).toEqual([])
    expect(edge.unexpectedExits()).toEqual([])
    // the primary really was down, and the edge answered every page meanwhile
    for (const o of outages) expect(o.primary_answered_while_down).toBe(0)
    expect(samples.length).toBeGreaterThan(50)
    expect(byStatus).toEqual({ 200: samples.length })
    // feedback: accepted while the primary was down, and none lost
    expect(sent.every((x) => x.status === 200)).toBe(true)
    // saving a mix while the primary is down: refused with a clear error, not hung
    for (const o of outages) {
      expect(o.put_mix_status).toBeGreaterThanOrEqual(502)
      expect(o.put_mix_error).not.toBe('')
      expect(o.deletion_gone_after_ms).toBeLessThan(DELETION_BOUND_MS)
    }
    for (const x of served) {
      expect(x.check.notStored, x.feed).toEqual([])
      expect(x.check.notLive, x.feed).toEqual([])
      expect(x.check.repeated, x.feed).toBe(0)
      expect(x.deletedServed, x.feed).toBe(0)
    }
    expect(signedIn.statuses.every((st) => st === 200)).toBe(true)
    expect(figures.edge_sqlite_created).toBe(false)
  }, 900_000)
})

/** The model's live posts less those deleted by the scenario's own replays. */
function liveModel<M extends { posts: Map<string, unknown> }>(model: M, deleted: Set<string>): M['posts'] {
  const posts = new Map(model.posts)
  for (const uri of deleted) posts.delete(uri)
  return posts as M['posts']
}

/**
 * The readers' backfill against a real PDS (dev-env PLC + PDS, no AppView):
 * what it reads from a repo, its bounds, and the SSRF guard. Its batches are
 * applied by the real store writer on a real SQLite file.
 *
 * Run: npx vitest run test/e2e/reader-backfill.e2e.test.ts
 */
import path from 'node:path'

import { AtpAgent } from '@atproto/api'
import type { TestNetworkNoAppView } from '@atproto/dev-env'
import { getPds, IdResolver } from '@atproto/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPdsOnly } from './support/network.ts'

import { ReaderBackfill } from '../../src/feed/reader-backfill.ts'
import { silentLogger } from '../../src/logger.ts'
import { createGuardedFetch } from '../../src/score/guarded-fetch.ts'
import { openDb, type Db } from '../../src/store/db.ts'
import { ReaderFilter } from '../../src/store/reader-filter.ts'
import { ReaderStore } from '../../src/store/readers.ts'
import { BatchWriter } from '../../src/store/writer.ts'
import type { StoreBatch } from '../../src/contracts/jobs.ts'
import { tid } from '../support/builders.ts'
import { until } from '../support/resources.ts'

interface User {
  did: string
  agent: AtpAgent
}

describe("backfilling a reader's graph from their repo", () => {
  let net: TestNetworkNoAppView
  let tmp: string
  let closeNet: (() => Promise<void>) | undefined
  let db: Db
  let resolver: IdResolver
  let rita: User, lena: User, bea: User
  const others: User[] = []
  const landed: string[] = []
  /** when rita's likes were made (their record keys' times), oldest first */
  let likeTimes: number[] = []
  const batches: StoreBatch[] = []

  const createUser = async (name: string): Promise<User> => {
    const agent = new AtpAgent({ service: net.pds.url })
    await agent.createAccount({ handle: `${name}.test`, email: `${name}@test.com`, password: 'hunter2-backfill' })
    return { did: agent.session!.did, agent }
  }

  /** a backfill wired to the real PDS and the real writer; `opts` override its bounds */
  const backfillWith = (opts: Partial<ConstructorParameters<typeof ReaderBackfill>[1]> = {}, guard = { allowPrivateNetwork: true }) => {
    const writer = new BatchWriter(db.sqlite)
    const guarded = createGuardedFetch(guard)
    return new ReaderBackfill(
      {
        readers: new ReaderStore(db.sqlite),
        resolvePds: async (did) => getPds(await resolver.did.ensureResolve(did)) ?? null,
        enqueue: async (b) => {
          batches.push(b)
          writer.write(b)
        },
        fetch: guarded.fetch,
        log: silentLogger,
        onLanded: (did) => landed.push(did),
      },
      { maxRecords: 1000, concurrency: 2, maxWaiting: 10, timeoutMs: 20_000, landPollMs: 20, ...opts },
    )
  }

  beforeAll(async () => {
    const pds = await startPdsOnly('backfill')
    net = pds.net
    tmp = pds.dir
    closeNet = pds.close
    resolver = new IdResolver({ plcUrl: net.plc.url, fetch: globalThis.fetch })
    db = openDb(path.join(tmp, 'skysift.db'))
    rita = await createUser('rita')
    lena = await createUser('lena')
    bea = await createUser('bea')
    for (let i = 0; i < 3; i++) others.push(await createUser(`other${i}`))
    // rita: 3 follows, a block, 150 likes, and a subscription to lena's block list
    for (const o of others) await rita.agent.follow(o.did)
    await rita.agent.app.bsky.graph.block.create({ repo: rita.did }, { subject: bea.did, createdAt: new Date().toISOString() })
    const list = await lena.agent.app.bsky.graph.list.create(
      { repo: lena.did },
      { name: 'spam', purpose: 'app.bsky.graph.defs#modlist', createdAt: new Date().toISOString() },
    )
    const curated = await lena.agent.app.bsky.graph.list.create(
      { repo: lena.did },
      { name: 'friends', purpose: 'app.bsky.graph.defs#curatelist', createdAt: new Date().toISOString() },
    )
    await lena.agent.app.bsky.graph.listitem.create({ repo: lena.did }, { list: list.uri, subject: others[2].did, createdAt: new Date().toISOString() })
    await lena.agent.app.bsky.graph.listitem.create({ repo: lena.did }, { list: curated.uri, subject: others[1].did, createdAt: new Date().toISOString() })
    await rita.agent.app.bsky.graph.listblock.create({ repo: rita.did }, { subject: list.uri, createdAt: new Date().toISOString() })
    const now = Date.now()
    likeTimes = Array.from({ length: 150 }, (_, i) => now - (150 - i) * 1000)
    await rita.agent.com.atproto.repo.applyWrites({
      repo: rita.did,
      writes: Array.from({ length: 150 }, (_, i) => ({
        $type: 'com.atproto.repo.applyWrites#create' as const,
        collection: 'app.bsky.feed.like',
        rkey: tid(likeTimes[i]),
        value: {
          subject: { uri: `at://${lena.did}/app.bsky.feed.post/${tid(now - i)}`, cid: 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm' },
          createdAt: new Date(now).toISOString(),
        },
      })),
    })
  }, 120_000)

  afterAll(async () => {
    db?.close()
    await closeNet?.()
  })

  const q = (sql: string, ...args: unknown[]) =>
    db.sqlite
      .prepare(sql)
      .pluck()
      .all(...args)

  it('reads follows, blocks, block lists with their members and the newest likes, bounded per collection, and stores them through the writer', async () => {
    const bf = backfillWith({ maxRecords: 100 }).start()
    try {
      bf.seen(rita.did)
      await bf.idle()
      expect(landed).toContain(rita.did)
      expect(new Set(q('SELECT subject FROM follows WHERE author = ?', rita.did))).toEqual(new Set(others.map((o) => o.did)))
      // the list's own member only (not the member of lena's other list), and the direct block
      expect(new Set(new ReaderFilter(db.sqlite).blockedFor(rita.did))).toEqual(new Set([bea.did, others[2].did]))
      // the newest 100 of 150 likes
      expect(q('SELECT at FROM reader_likes WHERE author = ? ORDER BY at', rita.did)).toEqual(likeTimes.slice(50))
      expect(q('SELECT backfilled_at IS NOT NULL FROM readers WHERE did = ?', rita.did)).toEqual([1])
      // seen again: nothing more is fetched
      const n = batches.length
      bf.seen(rita.did, Date.now() + 2 * 3_600_000)
      await bf.idle()
      expect(batches).toHaveLength(n)
    } finally {
      await bf.stop()
    }
  }, 60_000)

  it('refuses a PDS on a private address without the local-network switch, and retries later with a growing wait', async () => {
    const bf = backfillWith({}, { allowPrivateNetwork: false })
    try {
      bf.seen(lena.did)
      await bf.idle()
      const row = db.sqlite.prepare('SELECT attempts, next_try_at AS nextTryAt, backfilled_at AS backfilledAt FROM readers WHERE did = ?').get(lena.did) as {
        attempts: number
        nextTryAt: number
        backfilledAt: number | null
      }
      expect(row.backfilledAt).toBeNull()
      expect(row.attempts).toBe(1)
      expect(row.nextTryAt).toBeGreaterThan(Date.now() + 4000)
      expect(q('SELECT count(*) FROM follows WHERE author = ?', lena.did)).toEqual([0])
    } finally {
      await bf.stop()
    }
  })

  it('runs a few at once and leaves readers past its line for the next look at the pending ones', async () => {
    const bf = backfillWith({ concurrency: 1, maxWaiting: 1, pollMs: 100 })
    try {
      const dids = [others[0].did, others[1].did, others[2].did]
      for (const d of dids) bf.seen(d)
      // one running, one waiting, the third left in `readers` as pending; the poll takes it once there is room
      expect(bf.stats()).toEqual({ running: 1, waiting: 1 })
      bf.start()
      await until('every reader backfilled', () => dids.every((d) => landed.includes(d)), 20_000, 50)
    } finally {
      await bf.stop()
    }
  }, 30_000)
})

/**
 * The verified firehose source against a real PDS (`@atproto/dev-env`'s PLC
 * and PDS, no AppView): the saved cursor moves past every frame the source
 * has seen and decided (identity frames, commits of collections not wanted),
 * and a commit that fails verification is counted as rejected and logged
 * with its DID, seq and cause.
 */
import path from 'node:path'
import { Writable } from 'node:stream'
import { AtpAgent } from '@atproto/api'
import { Secp256k1Keypair } from '@atproto/crypto'
import type { TestNetworkNoAppView } from '@atproto/dev-env'
import { IdResolver } from '@atproto/identity'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPdsOnly } from './support/network.ts'
import { FirehoseSource } from '../../src/ingest/firehose-source.ts'
import { Ingester } from '../../src/ingest/ingester.ts'
import { producerQueue } from '../../src/contracts/queues.ts'
import { QUEUE, type EventsJob } from '../../src/contracts/jobs.ts'
import { openDb, type Db } from '../../src/store/db.ts'
import { queuePrefix, REDIS_URL, tempDir, until } from '../support/resources.ts'

/**
 * Resolves identities through the local PLC like the real one, except that it
 * names another signing key for every repo: to the verifier, every commit is
 * then signed by the wrong key (a forged commit).
 */
class WrongKeyResolver extends IdResolver {
  constructor(plcUrl: string, wrongKey: string) {
    // @NOTE the local PLC speaks plain http, which the resolver refuses unless given a fetch
    super({ plcUrl, fetch: globalThis.fetch })
    this.did.resolveAtprotoKey = async () => wrongKey
  }
}

describe('the firehose source on a real PDS', { timeout: 120_000 }, () => {
  let net: TestNetworkNoAppView
  let closeNet: (() => Promise<void>) | undefined
  let db: Db
  const cleanups: (() => unknown)[] = []
  let lastSeq: number
  let did: string

  beforeAll(async () => {
    const pds = await startPdsOnly('firehose')
    net = pds.net
    closeNet = pds.close
    const agent = new AtpAgent({ service: net.pds.url })
    await agent.createAccount({ handle: 'cursor.test', email: 'cursor@test.com', password: 'hunter2-e2e' })
    did = agent.session!.did
    for (let i = 0; i < 3; i++) await agent.post({ text: `post ${i}` })
    // the last frames are nothing Skysift wants: a profile record and a handle change (an identity frame)
    await agent.com.atproto.repo.putRecord({
      repo: did,
      collection: 'app.bsky.actor.profile',
      rkey: 'self',
      record: { $type: 'app.bsky.actor.profile', displayName: 'Cursor' },
    })
    await agent.com.atproto.identity.updateHandle({ handle: 'cursor2.test' })
    lastSeq = (await net.pds.ctx.sequencer.curr())!
    const t = tempDir()
    cleanups.push(t.cleanup)
    db = openDb(path.join(t.dir, 'skysift.db'))
    cleanups.push(() => db.close())
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
    await closeNet?.()
  })

  async function ingest(resolver: IdResolver, logLines: { level: number; msg: string; [k: string]: unknown }[] = []) {
    const q = queuePrefix()
    cleanups.push(q.cleanup)
    const queue = producerQueue<EventsJob>(QUEUE.events, REDIS_URL, q.prefix)
    cleanups.push(() => queue.close())
    const log = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, cb) => (logLines.push(JSON.parse(String(chunk))), cb()) }))
    const source = new FirehoseSource(`ws://localhost:${new URL(net.pds.url).port}`, resolver, log)
    db.sqlite.prepare('DELETE FROM cursors').run()
    db.sqlite.prepare("INSERT INTO cursors (source, cursor, event_time, updated_at) VALUES (?, '0', NULL, 0)").run(source.name)
    const ingester = new Ingester(source, queue, db.sqlite, log, { batchSize: 100, highWater: 1000, enqueueTimeoutMs: 2000 })
    void ingester.start()
    await until('the ingest to read up to the last frame', () => (ingester.stats.lastCursor === lastSeq ? true : undefined), 60_000, 50)
    await ingester.stop()
    return { ingester, queue, source }
  }

  it('saves the cursor past the identity and unwanted frames that end the stream', async () => {
    const { ingester, queue, source } = await ingest(new IdResolver({ plcUrl: net.plc.url, fetch: globalThis.fetch }))
    expect(db.sqlite.prepare('SELECT reason, payload FROM rejected_events').all()).toEqual([])
    expect(ingester.stats.rejected).toBe(0)
    const posts = (await queue.getJobs(['waiting'])).flatMap((j) => j.data.events).filter((e) => e.t === 'post')
    expect(posts).toHaveLength(3)
    // read again after a restart, nothing would come back: the cursor is the last frame's seq
    expect(db.sqlite.prepare('SELECT cursor FROM cursors WHERE source = ?').pluck().get(source.name)).toBe(String(lastSeq))
  })

  it('counts a commit that fails verification as rejected and logs its DID, seq and cause', async () => {
    const wrong = (await Secp256k1Keypair.create()).did()
    const lines: { level: number; msg: string; [k: string]: unknown }[] = []
    const { ingester, queue } = await ingest(new WrongKeyResolver(net.plc.url, wrong), lines)
    expect((await queue.getJobs(['waiting'])).flatMap((j) => j.data.events).filter((e) => e.t === 'post')).toEqual([])
    // the three posts' commits and the profile's (Skysift reads profiles for the `!no-unauthenticated` self-label)
    expect(ingester.stats.rejected).toBe(4)
    const warned = lines.filter((l) => l.msg === 'commit failed verification; rejected')
    expect(warned).toHaveLength(ingester.stats.rejected)
    for (const w of warned) {
      expect(w.level).toBe(40)
      expect(w.did).toBe(did)
      expect(typeof w.seq).toBe('number')
      expect(String(w.cause)).toMatch(/signature|verif/i)
    }
    const kept = db.sqlite.prepare('SELECT reason, payload FROM rejected_events ORDER BY id DESC LIMIT 1').get() as { reason: string; payload: string }
    expect(kept.reason).toMatch(/^commit not verified: /)
    expect(JSON.parse(kept.payload)).toMatchObject({ did })
  })
})

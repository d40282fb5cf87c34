/**
 * The writer applies facts by their order on the network, not by arrival:
 * any order of the same batches (and any batch applied twice) leaves the
 * same store as applying them in order. Histories mix account status churn,
 * post edits and deletes, likes, unlikes, reposts, follows and mix records;
 * every store is a real SQLite file.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { eventRev } from '../src/util/at-ids.ts'
import type { IngestEvent, MixRecordEntry } from '../src/contracts/events.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { BatchWriter } from '../src/store/writer.ts'
import type { StoreBatch } from '../src/contracts/jobs.ts'
import { postEvent, tid } from './support/builders.ts'
import { tempDir } from './support/resources.ts'

const AUTHORS = ['did:plc:aliceaaaaaaaaaaaaaaaaaaaa', 'did:plc:bobbbbbbbbbbbbbbbbbbbbbbb', 'did:plc:carolcccccccccccccccccccc']
const LIKER = 'did:plc:likerlllllllllllllllllllll'
/** a reader with a private mix: follows by or of them are kept */
const READER = 'did:plc:readerrrrrrrrrrrrrrrrrrrr'
const FEEDS = ['at://did:plc:publisherpublisherpublis/app.bsky.feed.generator/science', 'at://did:plc:publisherpublisherpublis/app.bsky.feed.generator/fresh']
const INSTANCE = 'order-test:x'

/** A small seeded generator (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)] }
}

/** A post's score as a function of its version, as a score worker would give it. */
const scoreOf = (cid: string) => (cid.charCodeAt(cid.length - 1) % 7) / 7

/**
 * A history on the network, in its order, cut into batches as the ingest
 * would: posts created, edited and deleted, likes and reposts of them (some
 * taken back), follows by the reader, the reader's mix records (created,
 * updated, deleted), and accounts going inactive and coming back.
 */
function history(seed: number, events = 160): StoreBatch[] {
  const r = rng(seed)
  const t0 = Date.now() - 20 * 60_000
  const out: { e: IngestEvent; ms: number }[] = []
  const posts: { uri: string; author: string; rkey: string; version: number; createdAt: number }[] = []
  const likes: string[] = []
  const follows: string[] = []
  const mixes: { uri: string; rkey: string; version: number }[] = []
  const inactive = new Set<string>()
  for (let i = 0; i < events; i++) {
    const ms = t0 + i * 250
    const rev = eventRev(ms * 1000)
    const roll = r.next()
    const live = posts.filter((p) => p.version >= 0)
    let e: IngestEvent | null = null
    if (roll < 0.25 || !live.length) {
      const author = r.pick(AUTHORS)
      const rkey = tid(ms, r.int(1024))
      const p = { uri: `at://${author}/app.bsky.feed.post/${rkey}`, author, rkey, version: 0, createdAt: ms }
      posts.push(p)
      e = postEvent({ author, rkey, cid: `bafyreiv0${rkey}`, text: `post ${rkey}`, createdAt: ms, rev })
    } else if (roll < 0.37) {
      const p = r.pick(live)
      p.version++
      e = postEvent({
        author: p.author,
        rkey: p.rkey,
        cid: `bafyreiv${p.version}${p.rkey}`,
        text: `post ${p.rkey} (edit ${p.version})`,
        createdAt: p.createdAt,
        rev,
      })
    } else if (roll < 0.43) {
      const p = r.pick(live)
      p.version = -1
      e = { t: 'delete', uri: p.uri, collection: 'app.bsky.feed.post' }
    } else if (roll < 0.63) {
      const u = `at://${LIKER}/app.bsky.feed.like/${tid(ms, r.int(1024))}`
      likes.push(u)
      e = { t: 'like', uri: u, author: LIKER, subject: r.pick(posts).uri }
    } else if (roll < 0.68 && likes.length) {
      e = { t: 'delete', uri: likes.splice(r.int(likes.length), 1)[0], collection: 'app.bsky.feed.like' }
    } else if (roll < 0.73) {
      e = { t: 'repost', uri: `at://${LIKER}/app.bsky.feed.repost/${tid(ms, r.int(1024))}`, author: LIKER, subject: r.pick(posts).uri }
    } else if (roll < 0.78) {
      const u = `at://${READER}/app.bsky.graph.follow/${tid(ms, r.int(1024))}`
      follows.push(u)
      e = { t: 'follow', uri: u, author: READER, subject: r.pick(AUTHORS) }
    } else if (roll < 0.8 && follows.length) {
      e = { t: 'delete', uri: follows.splice(r.int(follows.length), 1)[0], collection: 'app.bsky.graph.follow' }
    } else if (roll < 0.86) {
      const m = mixes.length && r.next() < 0.5 ? r.pick(mixes) : { uri: '', rkey: tid(ms, r.int(1024)), version: -1 }
      if (m.version < 0) {
        m.uri = `at://${READER}/app.skysift.feed.mix/${m.rkey}`
        mixes.push(m)
      }
      m.version++
      const agents: MixRecordEntry[] = [{ agent: 'recency', weight: (m.version * 17 + seed) % 100 }]
      e = { t: 'mix', uri: m.uri, author: READER, feed: r.pick(FEEDS), agents, createdAt: ms, rev }
    } else if (roll < 0.88 && mixes.length) {
      e = { t: 'delete', uri: mixes.splice(r.int(mixes.length), 1)[0].uri, collection: 'app.skysift.feed.mix' }
    } else if (roll < 0.97) {
      const did = r.pick(AUTHORS)
      if (inactive.has(did) && r.next() < 0.7) {
        inactive.delete(did)
        e = { t: 'account', did, active: true, status: null, rev }
      } else {
        inactive.add(did)
        e = { t: 'account', did, active: false, status: r.pick(['deactivated', 'takendown', 'suspended', 'deleted']), rev }
      }
    } else {
      // a status that changes nothing here
      e = { t: 'account', did: r.pick(AUTHORS), active: false, status: 'throttled', rev }
    }
    if (e) out.push({ e, ms })
  }
  const batches: StoreBatch[] = []
  for (let i = 0, n = 0; i < out.length; n++) {
    const part = out.slice(i, (i += 1 + r.int(6)))
    const events = part.map((x) => x.e)
    const rows = events.flatMap((e, k): [number, number][] => (e.t === 'post' ? [[k, scoreOf(e.cid)]] : []))
    batches.push({ id: `s${seed}-b${n}`, events, scores: [], postScores: { keys: [INSTANCE], rows }, eventTime: part.at(-1)!.ms })
  }
  return batches
}

/** Every fact the store keeps that events change (ids, local times and change logs left out). */
function facts(db: Db): Record<string, unknown[]> {
  const all = (sql: string) => db.sqlite.prepare(sql).all()
  return {
    posts: all('SELECT uri, cid, author, created_at, text, like_count, repost_count, rev FROM posts ORDER BY uri'),
    withheld: all('SELECT uri, cid, author, created_at, text, rev FROM withheld_posts ORDER BY uri'),
    // the counts a withheld post comes back with
    withheldCounts: all(`SELECT subject, kind, sum(n) AS n FROM waiting_engagements WHERE subject IN (SELECT uri FROM withheld_posts)
      GROUP BY subject, kind HAVING sum(n) > 0 ORDER BY subject, kind`),
    accounts: all('SELECT did, status, rev FROM account_status ORDER BY did'),
    scores: all('SELECT post_uri, instance, score FROM agent_scores ORDER BY post_uri, instance'),
    engagements: all('SELECT key, kind, subject FROM engagements ORDER BY key'),
    tombstones: all('SELECT uri FROM tombstones ORDER BY uri'),
    follows: all('SELECT uri, author, subject FROM follows ORDER BY uri'),
    mixRecords: all('SELECT uri, author, feed, agents, created_at, rev FROM mix_records ORDER BY uri'),
    mixes: all('SELECT subscriber, feed, source, agents, fingerprint FROM mixes ORDER BY subscriber, feed, source'),
  }
}

describe('the store writer applies facts by their order on the network', () => {
  const t = tempDir('skysift-order')
  afterAll(() => t.cleanup())
  let n = 0

  /** an empty store with the reader's private mix, copied for each order (migrating a new file each time is slower) */
  const template = path.join(t.dir, 'template.db')
  const seed = openDb(template)
  seed.sqlite
    .prepare(`INSERT INTO mixes (subscriber, feed, source, agents, fingerprint, updated_at) VALUES (?, ?, 'private', '[]', 'private-fp', 0)`)
    .run(READER, FEEDS[0])
  seed.sqlite.pragma('wal_checkpoint(TRUNCATE)')
  seed.close()

  /** A fresh store (a real SQLite file) with the batches applied in the order given. */
  const storeOf = (batches: StoreBatch[], grouped = false): Record<string, unknown[]> => {
    const file = path.join(t.dir, `order-${++n}.db`)
    fs.copyFileSync(template, file)
    const db = openDb(file)
    try {
      const w = new BatchWriter(db.sqlite)
      if (grouped) {
        for (let i = 0; i < batches.length; i += 5) for (const res of w.writeGroup(batches.slice(i, i + 5))) expect(res.ok).toBe(true)
      } else for (const b of batches) w.write(b)
      return facts(db)
    } finally {
      db.close()
      for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true })
    }
  }

  it('any order of the same batches, and batches applied twice, give the store the in-order application gives', () => {
    let checked = 0
    const seen = { posts: 0, withheld: 0, accounts: 0, engagements: 0, scores: 0, mixes: 0, follows: 0 }
    for (let seed = 1; seed <= 6; seed++) {
      const batches = history(seed)
      const expected = storeOf(batches)
      for (const k of Object.keys(seen) as (keyof typeof seen)[]) seen[k] += expected[k].length
      const r = rng(seed * 7919)
      const orders: StoreBatch[][] = [[...batches].reverse()]
      for (let k = 0; k < 10; k++) {
        const shuffled = [...batches]
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = r.int(i + 1)
          ;[shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]
        }
        // a few batches again, as a job taken twice after a crash
        for (let d = 0; d < 3; d++) shuffled.splice(r.int(shuffled.length + 1), 0, r.pick(batches))
        orders.push(shuffled)
      }
      // one batch held back to the very end (a killed worker's job handed back a minute late), each in turn
      for (let i = 0; i < batches.length; i += Math.max(1, Math.floor(batches.length / 6)))
        orders.push([...batches.slice(0, i), ...batches.slice(i + 1), batches[i]])
      for (const [k, order] of orders.entries()) {
        expect(storeOf(order, k % 2 === 1), `seed ${seed}, order ${k}`).toEqual(expected)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(60)
    // the histories exercise what they are about: shown and withheld posts, statuses, likes, scores, mixes, follows
    for (const [k, v] of Object.entries(seen)) expect(v, k).toBeGreaterThan(0)
  }, 120_000)

  it('in order, the store is what the history says: posts of inactive accounts withheld with their newest version, the others shown', () => {
    const batches = history(3)
    const got = storeOf(batches)
    const events = batches.flatMap((b) => b.events)
    const status = new Map<string, string>()
    for (const e of events) if (e.t === 'account' && (e.active || e.status !== 'throttled')) status.set(e.did, e.active ? 'active' : e.status!)
    expect(got.accounts).toEqual([...status].sort(([a], [b]) => (a < b ? -1 : 1)).map(([did, s]) => ({ did, status: s, rev: expect.any(String) })))
    const newest = new Map<string, { cid: string; author: string }>()
    const deleted = new Set<string>()
    for (const e of events) {
      if (e.t === 'post') newest.set(e.uri, { cid: e.cid, author: e.author })
      if (e.t === 'delete') deleted.add(e.uri)
    }
    const inactive = (did: string) => (status.get(did) ?? 'active') !== 'active'
    const expectPosts = (hidden: boolean) =>
      [...newest]
        .filter(([u, p]) => !deleted.has(u) && inactive(p.author) === hidden)
        .map(([uri, p]) => [uri, p.cid])
        .sort()
    expect((got.posts as { uri: string; cid: string }[]).map((p) => [p.uri, p.cid])).toEqual(expectPosts(false))
    expect((got.withheld as { uri: string; cid: string }[]).map((p) => [p.uri, p.cid])).toEqual(expectPosts(true))
  })

  it('a late "inactive" neither hides posts made after it nor overrides the newer "active"; a late original never replaces its edit', () => {
    const [alice] = AUTHORS
    const t0 = Date.now() - 5 * 60_000
    const rev = (s: number) => eventRev((t0 + s * 1000) * 1000)
    const original = postEvent({ author: alice, rkey: tid(t0), cid: 'bafyreioriginal', text: 'first', createdAt: t0, rev: rev(0) })
    const edit = { ...original, cid: 'bafyreiedited', text: 'second', rev: rev(5) }
    const later = postEvent({ author: alice, rkey: tid(t0 + 30_000), cid: 'bafyreilater', text: 'after coming back', createdAt: t0 + 30_000, rev: rev(30) })
    const b = (id: string, events: IngestEvent[], s: number): StoreBatch => ({ id, events, scores: [], eventTime: t0 + s * 1000 })
    const late = [b('inactive', [{ t: 'account', did: alice, active: false, status: 'deactivated', rev: rev(10) }], 10), b('original', [original], 0)]
    const onTime = [b('edit', [edit], 5), b('active', [{ t: 'account', did: alice, active: true, status: null, rev: rev(20) }], 20), b('later', [later], 30)]
    const got = storeOf([...onTime, ...late])
    expect(got.accounts).toEqual([{ did: alice, status: 'active', rev: rev(20) }])
    expect((got.posts as { uri: string; text: string }[]).map((p) => [p.uri, p.text])).toEqual([
      [original.uri, 'second'],
      [later.uri, 'after coming back'],
    ])
    expect(got.withheld).toEqual([])
    expect(got).toEqual(storeOf([...late, ...onTime].sort((x, y) => x.eventTime - y.eventTime)))
  })
})

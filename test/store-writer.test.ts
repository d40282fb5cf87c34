import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { engagementKey } from '../src/store/engagement-key.ts'
import { BatchWriter } from '../src/store/writer.ts'
import type { StoreBatch } from '../src/contracts/jobs.ts'
import { tempDir } from './support/resources.ts'
import { postEvent, tid } from './support/builders.ts'
import { tidTimeMs } from '../src/util/at-ids.ts'

const alice = 'did:plc:alicealicealicealicealic'
const bob = 'did:plc:bobbobbobbobbobbobbobbobb'
const uri = (did: string, col: string, rkey: string) => `at://${did}/${col}/${rkey}`
const postUri = (rkey: string, did = alice) => uri(did, 'app.bsky.feed.post', rkey)

const post = (rkey: string, p: Partial<PostEvent> = {}): PostEvent => postEvent({ author: alice, rkey, text: `post ${rkey}`, ...p })
const like = (rkey: string, subject: string, author = bob): IngestEvent => ({ t: 'like', uri: uri(author, 'app.bsky.feed.like', rkey), author, subject })
const del = (u: string, collection: string): IngestEvent => ({ t: 'delete', uri: u, collection })
let seq = 0
const batch = (events: IngestEvent[], scores: StoreBatch['scores'] = []): StoreBatch => ({ id: `b${++seq}`, events, scores, eventTime: Date.now() })

describe('BatchWriter on a real SQLite file', () => {
  let db: Db
  let writer: BatchWriter
  let cleanup: () => void
  const count = (sql: string, ...args: unknown[]) =>
    db.sqlite
      .prepare(sql)
      .pluck()
      .get(...args) as number
  const likes = (u: string) => count('SELECT like_count FROM posts WHERE uri = ?', u)

  beforeEach(() => {
    const t = tempDir()
    cleanup = t.cleanup
    db = openDb(path.join(t.dir, 'skysift.db'))
    writer = new BatchWriter(db.sqlite)
  })
  afterEach(() => {
    db.close()
    cleanup()
  })

  it('stores posts and counts likes once, even when a batch is applied twice', () => {
    const b = batch(
      [
        post('1'),
        like('l1', postUri('1')),
        like('l2', postUri('1')),
        { t: 'repost', uri: uri(bob, 'app.bsky.feed.repost', 'r1'), author: bob, subject: postUri('1') },
      ],
      [[postUri('1'), 'keyword:x', 1]],
    )
    writer.write(b)
    writer.write(b)
    expect(count('SELECT count(*) FROM posts')).toBe(1)
    expect(likes(postUri('1'))).toBe(2)
    expect(count('SELECT repost_count FROM posts')).toBe(1)
    expect(count('SELECT count(*) FROM agent_scores')).toBe(1)
  })

  it('counts an unlike down, once', () => {
    writer.write(batch([post('1'), like('l1', postUri('1')), like('l2', postUri('1'))]))
    const unlike = batch([del(uri(bob, 'app.bsky.feed.like', 'l1'), 'app.bsky.feed.like')])
    writer.write(unlike)
    writer.write(unlike)
    expect(likes(postUri('1'))).toBe(1)
  })

  it('ignores likes of posts it does not keep', () => {
    const r = writer.write(batch([like('l1', postUri('unknown'))]))
    expect(r.skipped).toBe(1)
    expect(count('SELECT count(*) FROM engagements')).toBe(0)
    // nor likes of posts minted long before the batch (older than the ingest, never coming)
    const old = writer.write(batch([like('l2', postUri(tid(Date.now() - 3 * 3_600_000)))]))
    expect(old.skipped).toBe(1)
    expect(count('SELECT count(*) FROM engagements')).toBe(0)
  })

  it('reads the time out of a TID record key', () => {
    const at = Date.UTC(2026, 11, 3, 8, 44, 12, 345)
    expect(tidTimeMs(tid(at, 17))).toBe(at)
    expect(tidTimeMs('3kt')).toBeNull()
    expect(tidTimeMs('unknownpost12')).toBeNull()
  })

  it('counts likes and reposts that arrive before their post (batches stored out of order)', () => {
    const rkey = tid(Date.now() - 5 * 60_000)
    const subject = postUri(rkey)
    const early = writer.write(
      batch([
        like('l1', subject),
        like('l2', subject),
        like('l3', subject),
        { t: 'repost', uri: uri(bob, 'app.bsky.feed.repost', 'r1'), author: bob, subject },
      ]),
    )
    expect(early.skipped).toBe(0)
    // one of them is taken back before the post is stored
    writer.write(batch([del(uri(bob, 'app.bsky.feed.like', 'l3'), 'app.bsky.feed.like')]))
    writer.write(batch([post(rkey)]))
    expect(likes(subject)).toBe(2)
    expect(count('SELECT repost_count FROM posts WHERE uri = ?', subject)).toBe(1)
    // replays change nothing, and later likes add to the count
    writer.write(batch([post(rkey), like('l1', subject)]))
    writer.write(batch([like('l4', subject)]))
    expect(likes(subject)).toBe(3)
  })

  it('removes a deleted post from posts and scores, and logs it for every ranked list', () => {
    writer.write(batch([post('1'), post('2')], [[postUri('1'), 'k:1', 0.5]]))
    const logged = count('SELECT max(seq) FROM post_deletions') ?? 0
    const id = count('SELECT id FROM posts WHERE uri = ?', postUri('1'))
    writer.write(batch([del(postUri('1'), 'app.bsky.feed.post')]))
    expect(count('SELECT count(*) FROM posts')).toBe(1)
    expect(count('SELECT count(*) FROM agent_scores')).toBe(0)
    // readers holding lists in memory learn of it from the log; the post's id is in the change log too
    expect(db.sqlite.prepare('SELECT uri FROM post_deletions WHERE seq > ?').pluck().all(logged)).toEqual([postUri('1')])
    expect(db.sqlite.prepare('SELECT post_id FROM post_changes ORDER BY seq DESC LIMIT 1').pluck().get()).toBe(id)
  })

  it('keeps a post deleted when its create arrives after the delete (out-of-order batches)', () => {
    writer.write(batch([del(postUri('1'), 'app.bsky.feed.post')]))
    const r = writer.write(batch([post('1')]))
    expect(r.posts).toBe(0)
    expect(count('SELECT count(*) FROM posts')).toBe(0)
  })

  it('withholds the posts of an account that is taken down, new ones too, and gives them back when it is active again', () => {
    writer.write(batch([post('1'), post('2'), post('3', { author: bob })]))
    writer.write(batch([{ t: 'account', did: alice, active: false, status: 'takendown' }]))
    expect(db.sqlite.prepare('SELECT author FROM posts').pluck().all()).toEqual([bob])
    writer.write(batch([post('4')]))
    expect(count('SELECT count(*) FROM posts WHERE author = ?', alice)).toBe(0)
    writer.write(batch([{ t: 'account', did: alice, active: true, status: null }, post('5')]))
    expect(db.sqlite.prepare('SELECT uri FROM posts WHERE author = ? ORDER BY uri').pluck().all(alice)).toEqual(['1', '2', '4', '5'].map((k) => postUri(k)))
    expect(count('SELECT count(*) FROM withheld_posts')).toBe(0)
  })

  it("counts a purged post's likes again when it comes back, less those taken back meanwhile, once", () => {
    const p = post(tid(Date.now() - 60_000))
    writer.write(
      batch([
        p,
        like('l1', p.uri),
        like('l2', p.uri),
        like('l3', p.uri),
        { t: 'repost', uri: uri(bob, 'app.bsky.feed.repost', 'r1'), author: bob, subject: p.uri },
      ]),
    )
    writer.write(batch([{ t: 'account', did: alice, active: false, status: 'deactivated' }]))
    expect(count('SELECT count(*) FROM posts')).toBe(0)
    writer.write(batch([del(uri(bob, 'app.bsky.feed.like', 'l2'), 'app.bsky.feed.like')]))
    // the create delivered again after the account is back (a replayed batch)
    const back = batch([{ t: 'account', did: alice, active: true, status: null }, p, like('l1', p.uri)])
    writer.write(back)
    writer.write(back)
    expect(likes(p.uri)).toBe(2)
    expect(count('SELECT repost_count FROM posts WHERE uri = ?', p.uri)).toBe(1)
    expect(count('SELECT count(*) FROM waiting_engagements')).toBe(0)
    // what was counted there is counted down there
    writer.write(batch([del(uri(bob, 'app.bsky.feed.like', 'l3'), 'app.bsky.feed.like')]))
    expect(likes(p.uri)).toBe(1)
  })

  it("keeps one compact row per like: no author, no URI, the post's likes waiting only until it is stored", () => {
    const rkey = tid(Date.now() - 60_000)
    writer.write(batch([like('l1', postUri(rkey)), like('l2', postUri(rkey))]))
    expect(count('SELECT count(*) FROM waiting_engagements WHERE subject = ?', postUri(rkey))).toBe(2)
    writer.write(batch([post(rkey)]))
    expect(count('SELECT count(*) FROM waiting_engagements')).toBe(0)
    expect(db.sqlite.prepare('SELECT kind, subject FROM engagements WHERE key = ?').get(engagementKey(uri(bob, 'app.bsky.feed.like', 'l1')))).toEqual({
      kind: 'like',
      subject: postUri(rkey),
    })
  })

  it('applies an edit and forgets scores computed for the old text', () => {
    writer.write(batch([post('1', { text: 'cats' })], [[postUri('1'), 'k:1', 1]]))
    writer.write(batch([post('1', { text: 'dogs', cid: 'bafyreibbbbbbbbbbbbbbbbbbb' })]))
    expect(db.sqlite.prepare('SELECT text FROM posts').pluck().get()).toBe('dogs')
    expect(count('SELECT count(*) FROM agent_scores')).toBe(0)
  })

  it('keeps follows only by or of subscribers', () => {
    const follow = (a: string, s: string, rkey: string): IngestEvent => ({ t: 'follow', uri: uri(a, 'app.bsky.graph.follow', rkey), author: a, subject: s })
    db.sqlite.prepare("INSERT INTO mixes (subscriber, feed, source, agents, fingerprint, updated_at) VALUES (?, 'f', 'private', '[]', 'x', 0)").run(alice)
    const carol = 'did:plc:carolcarolcarolcarolcaro'
    // kept: follows by a subscriber (alice) and of a subscriber (bob → alice, for "mutual"); dropped: bob → carol
    writer.write(batch([follow(alice, bob, 'f1'), follow(bob, alice, 'f2'), follow(bob, carol, 'f3')]))
    expect(db.sqlite.prepare("SELECT author || '>' || subject FROM follows ORDER BY uri").pluck().all()).toEqual([`${alice}>${bob}`, `${bob}>${alice}`])
    writer.write(batch([del(uri(alice, 'app.bsky.graph.follow', 'f1'), 'app.bsky.graph.follow')]))
    expect(count('SELECT count(*) FROM follows')).toBe(1)
  })

  it('stores an edit under a new id, with its counts', () => {
    writer.write(batch([post('1', { text: 'cats' }), like('l1', postUri('1'))]))
    const before = count('SELECT id FROM posts WHERE uri = ?', postUri('1'))
    writer.write(batch([post('1', { text: 'cats' })])) // a replay changes nothing
    expect(count('SELECT id FROM posts WHERE uri = ?', postUri('1'))).toBe(before)
    writer.write(batch([post('1', { text: 'dogs', cid: 'bafyreibbbbbbbbbbbbbbbbbbb' })]))
    expect(count('SELECT id FROM posts WHERE uri = ?', postUri('1'))).toBeGreaterThan(before)
    expect(likes(postUri('1'))).toBe(1)
  })

  it('applies a group of batches in one transaction, leaving out only the one that fails', () => {
    const broken = batch([post('3'), { ...post('4'), text: null as unknown as string }])
    const results = writer.writeGroup([batch([post('1')], [[postUri('1'), 'k:1', 1]]), broken, batch([post('2'), like('l1', postUri('1'))])])
    expect(results.map((r) => r.ok)).toEqual([true, false, true])
    expect(db.sqlite.prepare('SELECT uri FROM posts ORDER BY uri').pluck().all()).toEqual([postUri('1'), postUri('2')])
    expect(likes(postUri('1'))).toBe(1)
    expect(count('SELECT count(*) FROM agent_scores')).toBe(1)
    // the group's savepoints leave nothing open
    expect(db.sqlite.inTransaction).toBe(false)
  })

  it('stores scores sent one row per post (instance keys once, posts by their index in the batch)', () => {
    const b: StoreBatch = {
      ...batch([post('1'), like('l1', postUri('1')), post('2')]),
      // the like's row points at no post: left out; null is no opinion (not stored); 'drop' is stored as NULL
      postScores: {
        keys: ['k:a', 'k:b'],
        rows: [
          [0, 0.5, null],
          [1, 1, 1],
          [2, 'drop', 2],
        ],
      },
    }
    writer.write(b)
    writer.write(b)
    const rows = db.sqlite.prepare('SELECT post_uri, instance, score FROM agent_scores ORDER BY post_uri, instance').raw().all()
    expect(rows).toEqual([
      [postUri('1'), 'k:a', 0.5],
      [postUri('2'), 'k:a', null],
      [postUri('2'), 'k:b', 2],
    ])
  })

  it('rolls back the whole batch when a statement fails', () => {
    const broken = batch([post('1'), { ...post('2'), text: null as unknown as string }])
    expect(() => writer.write(broken)).toThrow()
    expect(count('SELECT count(*) FROM posts')).toBe(0)
  })
})

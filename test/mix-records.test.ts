import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { IngestEvent, MixEvent, MixRecordEntry } from '../src/contracts/events.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { MixStore } from '../src/store/mixes.ts'
import { BatchWriter, recordMixFingerprint } from '../src/store/writer.ts'
import type { StoreBatch } from '../src/contracts/jobs.ts'
import { tempDir } from './support/resources.ts'

const alice = 'did:plc:alicealicealicealicealic'
const bob = 'did:plc:bobbobbobbobbobbobbobbobb'
const MIX = 'app.skysift.feed.mix'
const science = 'at://did:plc:publisherpublisherpublis/app.bsky.feed.generator/science'
const fresh = 'at://did:plc:publisherpublisherpublis/app.bsky.feed.generator/fresh'
const T0 = Date.parse('2025-01-01T00:00:00Z')

const A: MixRecordEntry[] = [{ agent: 'recency', weight: 100 }]
const B: MixRecordEntry[] = [{ agent: 'keyword', weight: 50, options: { include: ['telescope'] } }]
const C: MixRecordEntry[] = [{ agent: 'engagement', weight: -20 }]

const S32 = '234567abcdefghijklmnopqrstuvwxyz'
/** repo revisions (TIDs sort as strings), handed out in increasing order: later commits, later revs */
let clock = 0
const nextRev = () => {
  let n = ++clock
  let out = ''
  for (let i = 0; i < 13; i++, n = Math.floor(n / 32)) out = S32[n % 32] + out
  return out
}
const mixUri = (rkey: string, did = alice) => `at://${did}/${MIX}/${rkey}`
const mix = (rkey: string, agents: MixRecordEntry[], createdAt: number, o: Partial<MixEvent> = {}): MixEvent => ({
  t: 'mix',
  uri: mixUri(rkey, o.author),
  author: alice,
  feed: science,
  agents,
  createdAt,
  rev: nextRev(),
  ...o,
})
const del = (rkey: string, did = alice): IngestEvent => ({ t: 'delete', uri: mixUri(rkey, did), collection: MIX })
let seq = 0
const batch = (events: IngestEvent[]): StoreBatch => ({ id: `m${++seq}`, events, scores: [], eventTime: Date.now() })

describe('app.skysift.feed.mix records in the store', () => {
  let db: Db
  let writer: BatchWriter
  let mixes: MixStore
  let cleanup: () => void
  const write = (...events: IngestEvent[]) => writer.write(batch(events))
  /** the author's 'record' row in `mixes` for a feed */
  const recordRow = (feed = science, did = alice) =>
    db.sqlite
      .prepare(`SELECT agents, fingerprint, updated_at AS updatedAt FROM mixes WHERE subscriber = ? AND feed = ? AND source = 'record'`)
      .get(did, feed) as { agents: string; fingerprint: string; updatedAt: number } | undefined
  const recordAgents = (feed = science, did = alice) => {
    const r = recordRow(feed, did)
    return r && JSON.parse(r.agents)
  }
  const dump = () => ({
    records: db.sqlite.prepare('SELECT * FROM mix_records ORDER BY uri').all(),
    mixes: db.sqlite.prepare('SELECT * FROM mixes ORDER BY subscriber, feed, source').all(),
    tombstones: db.sqlite.prepare('SELECT uri FROM tombstones ORDER BY uri').pluck().all(),
  })

  beforeEach(() => {
    const t = tempDir()
    cleanup = t.cleanup
    db = openDb(path.join(t.dir, 'skysift.db'))
    writer = new BatchWriter(db.sqlite)
    mixes = new MixStore(db.sqlite)
  })
  afterEach(() => {
    db.close()
    cleanup()
  })

  it("makes the newest record per feed the subscriber's record mix, whatever order the records arrive in", () => {
    const start = Date.now()
    expect(write(mix('3aaa', A, T0)).mixes).toBe(1)
    expect(recordAgents()).toEqual(A)
    expect(mixes.effective(alice, science)).toMatchObject({ source: 'record', agents: A, fingerprint: recordMixFingerprint(A) })
    expect(mixes.effective(alice, science)!.updatedAt).toBeGreaterThanOrEqual(start)

    write(mix('3ccc', C, T0 + 2000))
    expect(recordAgents()).toEqual(C)
    const changedAt = recordRow()!.updatedAt
    // an older record arriving late does not take over (nor touch the row)
    write(mix('3bbb', B, T0 + 1000))
    expect(recordAgents()).toEqual(C)
    expect(recordRow()!.updatedAt).toBe(changedAt)
    // a record for another feed is that feed's business
    write(mix('3ddd', B, T0 + 5000, { feed: fresh }))
    expect(recordAgents()).toEqual(C)
    expect(recordAgents(fresh)).toEqual(B)
    // and another author's records are theirs
    write(mix('3eee', A, T0 + 9000, { author: bob }))
    expect(recordAgents()).toEqual(C)
    expect(recordAgents(science, bob)).toEqual(A)
    expect(db.sqlite.prepare('SELECT count(*) FROM mix_records').pluck().get()).toBe(5)
  })

  it('breaks a createdAt tie by the larger record key', () => {
    write(mix('3zzz', B, T0), mix('3aaa', A, T0))
    expect(recordAgents()).toEqual(B)
    write(del('3zzz'))
    expect(recordAgents()).toEqual(A)
  })

  it('falls back to the previous record when the newest is deleted, and to none when all are', () => {
    write(mix('3aaa', A, T0), mix('3bbb', B, T0 + 1000), mix('3ccc', C, T0 + 2000))
    const before = recordRow()!.updatedAt
    write(del('3ccc'))
    expect(recordAgents()).toEqual(B)
    expect(recordRow()).toMatchObject({ fingerprint: recordMixFingerprint(B) })
    expect(recordRow()!.updatedAt).toBeGreaterThan(before)
    // deleting an older record changes nothing that applies
    write(del('3aaa'))
    expect(recordAgents()).toEqual(B)
    write(del('3bbb'))
    expect(recordRow()).toBeUndefined()
    expect(mixes.effective(alice, science)).toBeUndefined()
    expect(db.sqlite.prepare('SELECT count(*) FROM mix_records').pluck().get()).toBe(0)
  })

  it('applies an update in place, including one that moves the record to another feed', () => {
    write(mix('3aaa', A, T0), mix('3bbb', B, T0 + 1000))
    write(mix('3bbb', C, T0 + 1000))
    expect(recordAgents()).toEqual(C)
    expect(recordRow()!.fingerprint).toBe(recordMixFingerprint(C))
    // now it is about "fresh": "science" falls back to the other record
    write(mix('3bbb', C, T0 + 1000, { feed: fresh }))
    expect(recordAgents()).toEqual(A)
    expect(recordAgents(fresh)).toEqual(C)
  })

  it('moves updated_at whenever the entries that apply change, even within one millisecond, and never on a replay', () => {
    // (readers of `mixes` notice a changed mix by its updated_at; an update usually keeps the record's createdAt)
    const seen: number[] = []
    write(mix('3aaa', A, T0))
    seen.push(recordRow()!.updatedAt)
    for (const agents of [B, C, A, B]) {
      write(mix('3aaa', agents, T0))
      seen.push(recordRow()!.updatedAt)
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1])
    const last = recordRow()
    write(mix('3aaa', B, T0))
    expect(recordRow()).toEqual(last)
  })

  it('never lets an older version of a record overwrite a newer one that arrived first', () => {
    const v1 = mix('3aaa', A, T0)
    const v2 = mix('3aaa', B, T0)
    const v3 = mix('3aaa', C, T0, { feed: fresh })
    write(v2)
    expect(write(v1)).toMatchObject({ mixes: 0, skipped: 1 })
    expect(recordAgents()).toEqual(B)
    write(v3)
    write(v1, v2)
    expect(recordRow()).toBeUndefined()
    expect(recordAgents(fresh)).toEqual(C)
    // a source that does not know revisions ('') cannot undo a known one, and among unknowns the last applied wins
    write(mix('3aaa', A, T0, { rev: '' }))
    expect(recordAgents(fresh)).toEqual(C)
    write(mix('3bbb', A, T0, { rev: '' }), mix('3bbb', B, T0, { rev: '' }))
    expect(recordAgents()).toEqual(B)
  })

  it('keeps a record deleted when its create arrives after the delete', () => {
    write(mix('3aaa', A, T0))
    write(del('3bbb'))
    const r = write(mix('3bbb', B, T0 + 1000))
    expect(r).toMatchObject({ mixes: 0, skipped: 1 })
    expect(recordAgents()).toEqual(A)
    // the same with nothing else there
    write(del('3ccc', bob))
    write(mix('3ccc', C, T0, { author: bob }))
    expect(recordRow(science, bob)).toBeUndefined()
    expect(db.sqlite.prepare('SELECT uri FROM mix_records').pluck().all()).toEqual([mixUri('3aaa')])
  })

  it('gives the same rows when batches are replayed, in any order', () => {
    const batches = [
      batch([mix('3aaa', A, T0), mix('3bbb', B, T0 + 1000)]),
      batch([mix('3ccc', C, T0 + 2000), del('3bbb')]),
      batch([del('3ccc'), mix('3ddd', B, T0 + 3000, { feed: fresh })]),
      batch([mix('3eee', A, T0 + 500, { author: bob }), mix('3aaa', C, T0)]),
    ]
    for (const b of batches) writer.write(b)
    const once = dump()
    expect(recordAgents()).toEqual(C)
    expect(recordAgents(fresh)).toEqual(B)
    // a retry of every batch
    for (const b of batches) writer.write(b)
    expect(dump()).toEqual(once)
    // and a replay from the start in reverse (every delete is already tombstoned)
    for (const b of [...batches].reverse()) writer.write(b)
    expect(dump()).toEqual(once)
  })

  it('lets a private mix win over a record mix, which applies again once the private one is gone', () => {
    write(mix('3aaa', A, T0))
    mixes.put({ subscriber: alice, feed: science, source: 'private', agents: B, fingerprint: 'privatefp' })
    expect(mixes.effective(alice, science)).toMatchObject({ source: 'private', agents: B })
    // a newer record does not beat the private mix either
    write(mix('3bbb', C, T0 + 1000))
    expect(mixes.effective(alice, science)).toMatchObject({ source: 'private', agents: B })
    expect(recordAgents()).toEqual(C)
    mixes.delete(alice, science, 'private')
    expect(mixes.effective(alice, science)).toMatchObject({ source: 'record', agents: C })
    // deleting the records never touches the private row
    mixes.put({ subscriber: alice, feed: science, source: 'private', agents: B, fingerprint: 'privatefp' })
    write(del('3aaa'), del('3bbb'))
    expect(mixes.effective(alice, science)).toMatchObject({ source: 'private', agents: B })
  })

  it('makes the author a subscriber whose follows are kept', () => {
    const carol = 'did:plc:carolcarolcarolcarolcaro'
    const follow = (rkey: string): IngestEvent => ({ t: 'follow', uri: `at://${alice}/app.bsky.graph.follow/${rkey}`, author: alice, subject: carol })
    write(follow('f1'))
    expect(db.sqlite.prepare('SELECT count(*) FROM follows').pluck().get()).toBe(0)
    write(mix('3aaa', A, T0), follow('f2'))
    expect(db.sqlite.prepare('SELECT uri FROM follows').pluck().all()).toEqual([`at://${alice}/app.bsky.graph.follow/f2`])
  })

  it('gives different entries different fingerprints, and equal entries the same one', () => {
    expect(recordMixFingerprint(A)).toMatch(/^rec-[0-9a-f]{16}$/)
    expect(recordMixFingerprint(A)).not.toBe(recordMixFingerprint(B))
    expect(recordMixFingerprint([{ agent: 'keyword', weight: 50, options: { include: ['telescope'] } }])).toBe(recordMixFingerprint(B))
    expect(recordMixFingerprint([{ options: { include: ['telescope'] }, weight: 50, agent: 'keyword' }])).toBe(recordMixFingerprint(B))
  })
})

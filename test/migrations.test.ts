import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { afterEach, describe, expect, it } from 'vitest'
import { MIGRATIONS_FOLDER, openDb } from '../src/store/db.ts'
import { engagementKey } from '../src/store/engagement-key.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { postEvent, tid } from './support/builders.ts'
import { tempDir } from './support/resources.ts'

/** A copy of the migrations folder holding those before `tag` only. */
function migrationsBefore(dir: string, tag: string): string {
  const out = path.join(dir, 'migrations')
  fs.mkdirSync(path.join(out, 'meta'), { recursive: true })
  const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] }
  const upTo = journal.entries.findIndex((e) => e.tag === tag)
  expect(upTo).toBeGreaterThan(0)
  journal.entries = journal.entries.slice(0, upTo)
  for (const e of journal.entries) fs.copyFileSync(path.join(MIGRATIONS_FOLDER, `${e.tag}.sql`), path.join(out, `${e.tag}.sql`))
  fs.writeFileSync(path.join(out, 'meta', '_journal.json'), JSON.stringify(journal))
  return out
}

describe('migrations on a file written by the previous version', () => {
  const cleanups: (() => void)[] = []
  afterEach(() => {
    for (const c of cleanups.splice(0)) c()
  })

  it('0007 rekeys stored likes and reposts, and keeps those of posts not stored waiting for them', () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    const file = path.join(t.dir, 'old.db')
    const old = new Database(file)
    migrate(drizzle(old), { migrationsFolder: migrationsBefore(t.dir, '0007_compact_engagements') })
    const stored = postEvent({ rkey: tid(Date.now() - 60_000) })
    const later = `at://did:plc:later/app.bsky.feed.post/${tid(Date.now() - 30_000)}`
    old
      .prepare(`INSERT INTO posts (uri, cid, author, created_at, indexed_at, text, langs, tags, labels, like_count, repost_count)
        VALUES (?, ?, ?, ?, ?, 'hi', '[]', '[]', '[]', 2, 1)`)
      .run(stored.uri, stored.cid, stored.author, stored.createdAt, Date.now())
    const like = (n: number) => `at://did:plc:fan/app.bsky.feed.like/l${n}`
    const add = old.prepare('INSERT INTO engagements (uri, kind, author, subject) VALUES (?, ?, ?, ?)')
    add.run(like(1), 'like', 'did:plc:fan', stored.uri)
    add.run(like(2), 'like', 'did:plc:fan', stored.uri)
    add.run('at://did:plc:fan/app.bsky.feed.repost/r1', 'repost', 'did:plc:fan', stored.uri)
    add.run(like(3), 'like', 'did:plc:fan', later)
    old.close()

    const db = openDb(file)
    cleanups.push(() => db.close())
    const rows = db.sqlite.prepare('SELECT key, kind, subject FROM engagements ORDER BY key').safeIntegers().all()
    const expected = [
      { key: engagementKey(like(1)), kind: 'like', subject: stored.uri },
      { key: engagementKey(like(2)), kind: 'like', subject: stored.uri },
      { key: engagementKey('at://did:plc:fan/app.bsky.feed.repost/r1'), kind: 'repost', subject: stored.uri },
      { key: engagementKey(like(3)), kind: 'like', subject: later },
    ].sort((a, b) => (a.key < b.key ? -1 : 1))
    expect(rows).toEqual(expected)
    expect(db.sqlite.prepare('SELECT subject, key, kind, n FROM waiting_engagements').safeIntegers().all()).toEqual([
      { subject: later, key: engagementKey(like(3)), kind: 'like', n: 1n },
    ])

    // the writer carries on with them: an unlike counts down, the waiting like is counted by its post
    const writer = new BatchWriter(db.sqlite)
    writer.write({ id: 'a', events: [{ t: 'delete', uri: like(1), collection: 'app.bsky.feed.like' }], scores: [], eventTime: Date.now() })
    writer.write({ id: 'b', events: [postEvent({ author: 'did:plc:later', rkey: later.split('/').pop()! })], scores: [], eventTime: Date.now() })
    const likes = db.sqlite.prepare('SELECT like_count FROM posts WHERE uri = ?').pluck()
    expect(likes.get(stored.uri)).toBe(1)
    expect(likes.get(later)).toBe(1)
  })

  it('0010 drops repeated "seen" rows and counts every reader\'s interactions per feed', () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    const file = path.join(t.dir, 'old.db')
    const old = new Database(file)
    old.function('engagement_key', { deterministic: true }, (uri: unknown) => engagementKey(String(uri)))
    migrate(drizzle(old), { migrationsFolder: migrationsBefore(t.dir, '0010_interaction_bounds') })
    const add = old.prepare('INSERT INTO interactions (subscriber, feed, post_uri, event, at) VALUES (?, ?, ?, ?, ?)')
    for (const [who, feed, post, event] of [
      ['a', 'f', 'p1', 'seen'],
      ['a', 'f', 'p1', 'seen'],
      ['a', 'f', 'p1', 'more'],
      ['a', 'g', 'p1', 'seen'],
      ['b', 'f', 'p2', 'less'],
    ])
      add.run(who, feed, post, event, Date.now())
    old.close()
    const db = openDb(file)
    cleanups.push(() => db.close())
    expect(db.sqlite.prepare('SELECT subscriber, feed, n FROM interaction_state ORDER BY subscriber, feed').all()).toEqual([
      { subscriber: 'a', feed: 'f', n: 2 },
      { subscriber: 'a', feed: 'g', n: 1 },
      { subscriber: 'b', feed: 'f', n: 1 },
    ])
    expect(db.sqlite.prepare("SELECT count(*) FROM interactions WHERE event = 'seen'").pluck().get()).toBe(2)
  })
})

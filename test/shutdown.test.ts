import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJetstream } from '../src/ingest/jetstream.ts'
import { writeSyntheticJsonl } from '../src/ingest/synthetic.ts'
import { producerQueue } from '../src/contracts/queues.ts'
import { QUEUE } from '../src/contracts/jobs.ts'
import { collectJsonLines, queuePrefix, REDIS_URL, tempDir, waitFor } from './support/resources.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = path.join(ROOT, 'src/cli.ts')
const EVENTS = 30_000
const BATCH = 200

interface LogLine {
  pid: number
  msg: string
  sub?: string
  [k: string]: unknown
}

/** `node src/cli.ts start` as a real child process, its JSON log lines collected. */
function start(env: NodeJS.ProcessEnv): { child: ChildProcess; lines: LogLine[]; exited: Promise<{ code: number | null; signal: string | null; at: number }> } {
  const child = spawn(process.execPath, [CLI, 'start'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: LogLine[] = []
  collectJsonLines(child, lines)
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  )
  return { child, lines, exited }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Independent model of the replay: how many events of each kind the store
 * must count, and which posts must be stored. Posts by authors with account
 * status events are left out of the post comparison: parallel score workers
 * may store those batches in another order than the file's, and a purge is
 * order-dependent.
 */
function model(lines: string[]) {
  const kinds: Record<string, number> = {}
  const created = new Map<string, string>()
  const deleted = new Set<string>()
  const accountEvents = new Set<string>()
  let total = 0
  for (const line of lines) {
    const d = decodeJetstream(line)
    if (!d.ok || !d.event) continue
    total++
    const e = d.event
    kinds[e.t] = (kinds[e.t] ?? 0) + 1
    if (e.t === 'post') created.set(e.uri, e.author)
    else if (e.t === 'delete') deleted.add(e.uri)
    else if (e.t === 'account') accountEvents.add(e.did)
  }
  const posts = new Set([...created].filter(([uri, author]) => !deleted.has(uri) && !accountEvents.has(author)).map(([uri]) => uri))
  return { total, kinds, posts, accountEvents }
}

describe('graceful shutdown with real processes: SIGTERM mid-replay, then start again', () => {
  let dir: string
  let file: string
  let dbPath: string
  let env: NodeJS.ProcessEnv
  let lines: string[]
  const cleanups: (() => unknown)[] = []
  const children: ChildProcess[] = []

  beforeAll(async () => {
    const t = tempDir('skysift-shutdown')
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    dir = t.dir
    file = path.join(dir, 'events.jsonl')
    dbPath = path.join(dir, 'skysift.db')
    await writeSyntheticJsonl(file, { count: EVENTS, seed: 7 })
    lines = fs.readFileSync(file, 'utf8').trim().split('\n')
    env = {
      ...process.env,
      NODE_ENV: 'production',
      REDIS_URL,
      SKYSIFT_DB_PATH: dbPath,
      SKYSIFT_QUEUE_PREFIX: q.prefix,
      SKYSIFT_SOURCE: `replay:${file}`,
      SKYSIFT_PORT: '0',
      SKYSIFT_HOST: '127.0.0.1',
      SKYSIFT_PUBLIC_URL: 'http://localhost:3999',
      SKYSIFT_START_REDIS: 'never',
      SKYSIFT_LOG_LEVEL: 'info',
      SKYSIFT_SCORE_WORKERS: '1',
      SKYSIFT_BATCH_SIZE: String(BATCH),
      // ingest waits for the score worker, so the stop lands with work in every stage
      SKYSIFT_QUEUE_HIGH_WATER: '3',
    }
    delete env.SKYSIFT_ADMIN_TOKEN
    delete env.SKYSIFT_SERVICE_DID
    delete env.SKYSIFT_PUBLISHER_DID
  })

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    for (const c of cleanups.reverse()) await c()
  })

  it('stores every queued event exactly once and never skips the cursor', async () => {
    const want = model(lines)
    expect(want.total).toBeGreaterThan(EVENTS * 0.9)

    // -- first run: SIGTERM while the replay is about a third through ----------
    const first = start(env)
    children.push(first.child)
    await waitFor(() => fs.existsSync(dbPath), 'the database file', 30_000)
    const cursorOf = () => {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true })
      try {
        db.pragma('busy_timeout = 2000')
        const c = db.prepare('SELECT cursor FROM cursors').pluck().get() as string | undefined
        return c === undefined ? 0 : Number(c)
      } finally {
        db.close()
      }
    }
    await waitFor(() => cursorOf() >= EVENTS / 3, 'a third of the replay queued', 90_000, 100)
    const sentAt = Date.now()
    first.child.kill('SIGTERM')
    const exit1 = await first.exited
    expect(exit1.code, JSON.stringify(first.lines.slice(-5))).toBe(0)
    expect(exit1.at - sentAt).toBeLessThan(10_000)
    // every process of the tree is gone (the score worker child included)
    const pids = new Set(first.lines.map((l) => l.pid))
    expect(pids.size).toBeGreaterThanOrEqual(2)
    await waitFor(() => [...pids].every((p) => !alive(p)), 'every process of the first run to exit', 5000)

    const c1 = cursorOf()
    expect(c1).toBeGreaterThanOrEqual(EVENTS / 3)
    expect(c1).toBeLessThan(EVENTS)
    const stopped1 = first.lines.find((l) => l.msg === 'ingest stopped')!
    expect(stopped1).toBeDefined()
    // the saved cursor is exactly the end of the last batch that reached Redis
    expect(stopped1.lastCursor).toBeGreaterThanOrEqual(c1)
    expect(first.lines.filter((l) => l.msg === 'stopped').length).toBe(pids.size)

    // -- second run: resumes at the saved cursor and finishes ------------------
    const second = start(env)
    children.push(second.child)
    const events = producerQueue(QUEUE.events, REDIS_URL, env.SKYSIFT_QUEUE_PREFIX!)
    const store = producerQueue(QUEUE.store, REDIS_URL, env.SKYSIFT_QUEUE_PREFIX!)
    try {
      const counters = () => {
        const db = new Database(dbPath, { readonly: true, fileMustExist: true })
        try {
          db.pragma('busy_timeout = 2000')
          return Object.fromEntries((db.prepare('SELECT name, value FROM counters').all() as { name: string; value: number }[]).map((r) => [r.name, r.value]))
        } finally {
          db.close()
        }
      }
      await waitFor(
        async () => {
          if (cursorOf() !== lines.length) return false
          const [e, s] = await Promise.all([events.getJobCounts('waiting', 'active', 'delayed'), store.getJobCounts('waiting', 'active', 'delayed')])
          return e.waiting + e.active + e.delayed + s.waiting + s.active + s.delayed === 0 && (counters().events_stored ?? 0) >= want.total
        },
        'the replay to be read, queued and stored',
        120_000,
        200,
      )
      const starting2 = second.lines.find((l) => l.msg === 'ingest starting')!
      expect(starting2.cursor).toBe(c1)
      const done2 = second.lines.find((l) => l.msg === 'replay finished; still serving')!
      expect(done2).toBeDefined()
      expect(done2.received).toBe(lines.length - c1)
      const queued = (stopped1.queued as number) + (done2.queued as number)
      expect(queued).toBe(want.total)

      const got = counters()
      expect(got.events_stored).toBe(want.total)
      for (const [kind, n] of Object.entries(want.kinds)) expect(got[`events:${kind}`], kind).toBe(n)
      const failed = (await events.getJobCounts('failed')).failed + (await store.getJobCounts('failed')).failed
      expect(failed).toBe(0)

      const db = new Database(dbPath, { readonly: true, fileMustExist: true })
      try {
        const rows = db.prepare('SELECT uri, author FROM posts').all() as { uri: string; author: string }[]
        const stored = new Set(rows.filter((r) => !want.accountEvents.has(r.author)).map((r) => r.uri))
        expect(stored.size).toBe(want.posts.size)
        expect(stored).toEqual(want.posts)
        expect(want.posts.size).toBeGreaterThan(1000)
      } finally {
        db.close()
      }
    } finally {
      await events.close()
      await store.close()
    }

    const sentAt2 = Date.now()
    second.child.kill('SIGTERM')
    const exit2 = await second.exited
    expect(exit2.code).toBe(0)
    expect(exit2.at - sentAt2).toBeLessThan(10_000)
  }, 240_000)
})

/**
 * One fault scenario's resources: a temp dir, a SQLite path, a unique queue
 * prefix, the environment its stage processes share, and the cleanup that
 * removes all of it (processes first, then Redis keys, then files) even when
 * the scenario failed.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { Queue } from 'bullmq'
import { deleteQueueKeys, redisOptions } from '../../../src/contracts/queues.ts'
import { REDIS_URL } from '../../support/resources.ts'
import { killAll } from './procs.ts'

/** FAULTS_FULL=1 runs the sizes the issue asks for; the default is the short CI version. */
export const FULL = /^(1|true|yes)$/i.test(process.env.FAULTS_FULL ?? '')

/** Picks the short or the full figure. */
export const size = <T>(short: T, full: T): T => (FULL ? full : short)

export interface Scenario {
  name: string
  dir: string
  dbPath: string
  prefix: string
  redisUrl: string
  /** environment for `node workers/*.ts` of this scenario */
  env: NodeJS.ProcessEnv
  cleanup(): Promise<void>
  onCleanup(fn: () => unknown): void
}

/** Environment for stage processes: ours, minus any Skysift settings of the caller, plus these. */
export function stageEnv(over: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(SKYSIFT_|REDIS_URL$|VITEST|NODE_OPTIONS$)/.test(k)) env[k] = v
  return {
    ...env,
    NODE_ENV: 'production',
    SKYSIFT_HOST: '127.0.0.1',
    SKYSIFT_START_REDIS: 'never',
    SKYSIFT_LOG_LEVEL: 'info',
    // nothing in these scenarios resolves a did:plc; a closed port fails fast
    SKYSIFT_PLC_URL: 'http://127.0.0.1:9',
    SKYSIFT_ALLOW_INSECURE_HTTP: 'true',
    ...over,
  }
}

export function createScenario(name: string, opts: { redisUrl?: string; ownRedis?: boolean } = {}): Scenario {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `skysift-faults-${name}-`))
  const prefix = `{faults-${name}-${randomBytes(4).toString('hex')}}`
  const redisUrl = opts.redisUrl ?? REDIS_URL
  const dbPath = path.join(dir, 'skysift.db')
  const extra: (() => unknown)[] = []
  let done = false
  return {
    name,
    dir,
    dbPath,
    prefix,
    redisUrl,
    env: stageEnv({ REDIS_URL: redisUrl, SKYSIFT_QUEUE_PREFIX: prefix, SKYSIFT_DB_PATH: dbPath }),
    onCleanup: (fn) => void extra.push(fn),
    async cleanup() {
      if (done) return
      done = true
      await killAll()
      for (const fn of extra.reverse()) {
        try {
          await fn()
        } catch (err) {
          process.stderr.write(`[faults ${name}] cleanup step failed: ${(err as Error).message}\n`)
        }
      }
      // a Redis of the scenario's own is gone with its process and its dir
      if (!opts.ownRedis)
        await deleteQueueKeys(redisUrl, prefix).catch((err) => process.stderr.write(`[faults ${name}] Redis keys not deleted: ${(err as Error).message}\n`))
      if (process.env.FAULTS_KEEP) process.stderr.write(`[faults ${name}] kept ${dir}\n`)
      else fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A read-only view of the scenario's SQLite file (opened per call: the file may not exist yet). */
export function readDb<T>(dbPath: string, fn: (db: Database.Database) => T): T {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

export function counter(db: Database.Database, name: string): number {
  return Number(db.prepare('SELECT value FROM counters WHERE name = ?').pluck().get(name) ?? 0)
}

/** The queues of a scenario, for depth and drain checks. */
export function queues(redisUrl: string, prefix: string) {
  const connection = { ...redisOptions(redisUrl), maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 }
  const events = new Queue('events', { connection, prefix })
  const store = new Queue('store', { connection, prefix })
  events.on('error', () => {})
  store.on('error', () => {})
  const counts = async () => {
    const [e, s] = await Promise.all([
      events.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized', 'waiting-children'),
      store.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized', 'waiting-children'),
    ])
    return { events: e, store: s }
  }
  return {
    events,
    store,
    counts,
    /** jobs not finished yet, both queues (failed ones are finished: they count as lost) */
    async pending(): Promise<number> {
      const c = await counts()
      const open = (x: Record<string, number>) => (x.waiting ?? 0) + (x.active ?? 0) + (x.delayed ?? 0) + (x.prioritized ?? 0) + (x['waiting-children'] ?? 0)
      return open(c.events) + open(c.store)
    },
    async failed(): Promise<number> {
      const c = await counts()
      return (c.events.failed ?? 0) + (c.store.failed ?? 0)
    },
    async close() {
      await Promise.allSettled([events.close(), store.close()])
    },
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls until `check` returns a truthy value; the error names what was awaited and the last value seen. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs: number, everyMs = 250): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      )
    await sleep(everyMs)
  }
}

/** Prints the scenario's figures as one JSON line (and appends it to FAULTS_REPORT when set). */
export function report(scenario: string, figures: Record<string, unknown>): void {
  const line = JSON.stringify({ scenario, mode: FULL ? 'full' : 'short', at: new Date().toISOString(), ...figures })
  process.stdout.write(`FAULTS ${line}\n`)
  if (process.env.FAULTS_REPORT) fs.appendFileSync(process.env.FAULTS_REPORT, `${line}\n`)
}

export const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)

/**
 * Waits until the stored-events counter holds still across two looks 1.5 s
 * apart with no job pending: what the stages had left to do is done.
 * `each` runs before every look (a sample of what is served, say).
 */
export async function settled(stored: () => number, pending: () => Promise<number>, each?: () => Promise<void>): Promise<void> {
  let last = -1
  await until(
    'events_stored to settle',
    async () => {
      await each?.()
      const n = stored()
      const same = n === last
      last = n
      return same && (await pending()) === 0
    },
    60_000,
    1500,
  )
}

import fs from 'node:fs'
import type { Queue } from 'bullmq'
import type { Config } from '../config.ts'
import { AppContext } from '../context.ts'
import { createLogger } from '../logger.ts'
import { producerQueue } from '../contracts/queues.ts'
import { QUEUE, type QueueName } from '../contracts/jobs.ts'
import { redisAnswers } from '../redis-server.ts'
import { openDb, type Db } from '../store/db.ts'
import { withTimeout } from '../util/timeout.ts'
import { collectStatus, formatStatus, type OpsStatus } from '../status/status.ts'

/**
 * `skysift status`: the admin page's summary in a terminal. Reads the SQLite
 * file (read-only) and Redis directly, so it works beside a running server
 * in another process, and with either of them down.
 */
export async function statusCommand(config: Readonly<Config>, opts: { json?: boolean } = {}): Promise<{ text: string; status: OpsStatus }> {
  if (!fs.existsSync(config.dbPath)) throw new Error(`no database at ${config.dbPath} (set SKYSIFT_DB_PATH, or start Skysift once)`)
  const log = createLogger('silent')
  const ctx = await AppContext.create(config, log)
  let db: Db
  try {
    db = openDb(config.dbPath, { readonly: true })
  } catch {
    // @NOTE a read-only connection cannot open a WAL file whose -shm is missing (no other process has it open): open it normally
    db = ctx.db
  }
  const redisUp = await redisAnswers(config.redisUrl, 1000)
  const redis = redisUp ? ctx.redis() : null
  const queues: Partial<Record<QueueName, Queue>> = {}
  if (redisUp) {
    for (const name of Object.values(QUEUE)) {
      const q = producerQueue(name, config.redisUrl, config.queuePrefix)
      q.on('error', () => {})
      queues[name] = q
    }
  }
  try {
    const status = await collectStatus({
      db: db.sqlite,
      feeds: ctx.feeds,
      host: ctx.host,
      version: ctx.version,
      source: config.source,
      queuePrefix: config.queuePrefix,
      redis,
      queues,
    })
    if (!redisUp) status.redis = { ok: false, error: `no answer at ${config.redisUrl}` }
    return { status, text: opts.json ? JSON.stringify({ ...status, samples: undefined }, null, 2) : formatStatus(status) }
  } finally {
    await Promise.all(Object.values(queues).map((q) => withTimeout(q!.close(), 2000).catch(() => {})))
    if (db !== ctx.db) db.close()
    await ctx.close()
  }
}

/**
 * A Skysift server for the abuse scenarios: real stage processes
 * (`node workers/<stage>.ts`) on a fresh SQLite file seeded with posts, a
 * unique queue prefix on the shared Redis, and a port of its own.
 */
import path from 'node:path'
import type { PostEvent } from '../../../src/contracts/events.ts'
import { openDb } from '../../../src/store/db.ts'
import { BatchWriter } from '../../../src/store/writer.ts'
import { freePort, stage, type Proc, type StageName } from '../../faults/support/procs.ts'
import { queuePrefix, REDIS_URL, tempDir, until } from '../../support/resources.ts'

export const SERVICE = 'did:web:feeds.test'
export const PUBLISHER = 'did:plc:publisherpublisherpublish'
export const FRESH = `at://${PUBLISHER}/app.bsky.feed.generator/fresh`

export interface AbuseServer {
  base: string
  dir: string
  procs: Proc[]
  /** stops the processes and removes the files and queue keys */
  close(): Promise<void>
}

/** Starts `stages` (serve first) with `env` on top of defaults that serve `feeds.example.json` as SERVICE. */
export async function startServer(opts: { stages?: StageName[]; env?: NodeJS.ProcessEnv; posts?: PostEvent[] } = {}): Promise<AbuseServer> {
  const t = tempDir('skysift-abuse')
  const q = queuePrefix()
  const dbPath = path.join(t.dir, 'skysift.db')
  const db = openDb(dbPath)
  if (opts.posts?.length) new BatchWriter(db.sqlite).write({ id: 'seed', events: opts.posts, scores: [], eventTime: Date.now() })
  db.close()
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SKYSIFT_DB_PATH: dbPath,
    REDIS_URL,
    SKYSIFT_QUEUE_PREFIX: q.prefix,
    SKYSIFT_PORT: String(port),
    SKYSIFT_HOST: '127.0.0.1',
    SKYSIFT_SERVICE_DID: SERVICE,
    SKYSIFT_PUBLISHER_DID: PUBLISHER,
    SKYSIFT_START_REDIS: 'never',
    SKYSIFT_LOG_LEVEL: 'info',
    ...opts.env,
  }
  const procs = (opts.stages ?? ['serve']).map((s) => stage(s, env, t.dir).start())
  const close = async () => {
    await Promise.all(procs.map((p) => p.stop(10_000)))
    await q.cleanup()
    t.cleanup()
  }
  try {
    await until(
      'the server answers',
      async () => {
        const dead = procs.find((p) => !p.running)
        if (dead) throw new Error(`${dead.name} exited:\n${dead.tail()}`)
        return (await fetch(`${base}/xrpc/_health`).catch(() => null))?.ok === true
      },
      60_000,
    )
  } catch (err) {
    await close()
    throw err
  }
  return { base, dir: t.dir, procs, close }
}

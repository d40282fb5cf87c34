/**
 * The whole chain as separate processes on one scenario: store, score,
 * refresh, serve and ingest (`node workers/*.ts`), with a read-only view of
 * the SQLite file for the checks.
 */
import Database from 'better-sqlite3'
import { freePort, stage, type Proc, type StageName } from './procs.ts'
import { counter, queues, until, type Scenario } from './scenario.ts'

export interface Pipeline {
  procs: Record<StageName, Proc>
  base: string
  port: number
  env: NodeJS.ProcessEnv
  /** feed at-uris the server hosts */
  feeds: string[]
  db: Database.Database
  source: string
  cursor(): number
  stored(): number
  /** messages of processes that exited without being asked to */
  crashed(): string[]
  /** starts ingest (it is started last, once the rest is up) */
  startIngest(): void
}

export async function startPipeline(
  s: Scenario,
  over: Record<string, string>,
  opts: { file: string; ingest?: boolean; waitHealthy?: boolean },
): Promise<Pipeline> {
  const port = await freePort()
  const env = { ...s.env, SKYSIFT_PORT: String(port), SKYSIFT_PUBLIC_URL: `http://localhost:${port}`, ...over }
  const base = `http://127.0.0.1:${port}`
  const procs: Record<StageName, Proc> = {
    store: stage('store', env, s.dir),
    score: stage('score', env, s.dir),
    refresh: stage('refresh', env, s.dir),
    serve: stage('serve', env, s.dir),
    ingest: stage('ingest', env, s.dir),
  }
  procs.store.start()
  procs.score.start()
  procs.refresh.start()
  procs.serve.start()
  const crashed = () => Object.values(procs).flatMap((p) => p.unexpectedExits().map((e) => `${p.name} exited by itself (${e.signal ?? e.code}):\n${p.tail()}`))
  await until(
    'the server to answer',
    async () => {
      const c = crashed()
      if (c.length) throw new Error(c.join('\n'))
      const res = await fetch(`${base}/xrpc/_health`)
      return opts.waitHealthy === false ? res.status > 0 : res.status === 200
    },
    60_000,
  )
  const feeds = ((await (await fetch(`${base}/xrpc/app.bsky.feed.describeFeedGenerator`)).json()) as { feeds: { uri: string }[] }).feeds.map((f) => f.uri)
  const db = await until(
    'the SQLite file',
    () => {
      try {
        return new Database(s.dbPath, { readonly: true, fileMustExist: true })
      } catch {
        return null
      }
    },
    30_000,
  )
  db.pragma('busy_timeout = 5000')
  s.onCleanup(() => db.close())
  const source = `replay:${opts.file.split('#')[0]}`
  const cursorOf = db.prepare('SELECT cursor FROM cursors WHERE source = ?').pluck()
  const p: Pipeline = {
    procs,
    base,
    port,
    env,
    feeds,
    db,
    source,
    cursor: () => Number(cursorOf.get(source) ?? 0),
    stored: () => counter(db, 'events_stored'),
    crashed,
    startIngest: () => void procs.ingest.start(),
  }
  if (opts.ingest !== false) p.startIngest()
  return p
}

/**
 * A replay of `file` through the whole chain for the kill scenarios: batches
 * of `batch` events, ingest held back past `highWater` waiting batches (so
 * kills land with work in every stage), lists stale after 3 s (so the
 * refresh worker rebuilds them all through the kills), the queues to watch,
 * and the ingest started last. Returns when the ingest has been started.
 */
export async function startKillRun(s: Scenario, file: string, o: { batch: number; highWater: number }): Promise<{ p: Pipeline; q: ReturnType<typeof queues> }> {
  const p = await startPipeline(
    s,
    { SKYSIFT_SOURCE: `replay:${file}`, SKYSIFT_BATCH_SIZE: String(o.batch), SKYSIFT_QUEUE_HIGH_WATER: String(o.highWater), SKYSIFT_CACHE_TTL_S: '3' },
    { file, ingest: false },
  )
  const q = queues(s.redisUrl, s.prefix)
  s.onCleanup(() => q.close())
  p.startIngest()
  return { p, q }
}

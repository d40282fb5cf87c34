import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import type { Logger } from '../logger.ts'
import type { Sqlite } from './db.ts'

/**
 * WAL checkpoints on a thread of their own. A checkpoint copies the WAL back
 * into the database file and fsyncs it; left to SQLite's automatic
 * checkpoints it runs inside a COMMIT every ~4 MB of WAL, on the thread that
 * also serves and writes. Here the writer's connection stops checkpointing
 * and a second connection, on a worker thread, runs a PASSIVE checkpoint
 * (which never blocks the writer or readers) every `intervalMs`.
 *
 * Under constant writes the WAL is never completely copied at the moment a
 * transaction starts, so it would never start over and would only grow: once
 * the thread sees it past `restartPages`, the writer's connection finishes
 * the copy itself between two of its transactions (its writes are
 * synchronous, so no transaction of its own is open then), and its next
 * transaction writes the WAL from the start again. Should the thread die,
 * the writer's connection goes back to automatic checkpoints.
 */
export interface CheckpointerOptions {
  /** time between checkpoints: longer copies a page changed by several commits once */
  intervalMs?: number
  /** WAL size (4 KiB pages) past which the WAL is made to start over */
  restartPages?: number
}

export interface Checkpointer {
  stop(): Promise<void>
}

interface WorkerInput {
  file: string
  intervalMs: number
}

const AUTO_PAGES = 1000

export function startCheckpointer(db: Sqlite, log: Logger, opts: CheckpointerOptions = {}): Checkpointer | null {
  if (db.memory) return null
  const restartPages = opts.restartPages ?? 16_384
  const worker = new Worker(new URL(import.meta.url), { workerData: { file: db.name, intervalMs: opts.intervalMs ?? 200 } satisfies WorkerInput })
  worker.unref()
  db.pragma('wal_autocheckpoint = 0')
  let catchingUp = false
  let stopping = false
  const restore = () => {
    try {
      if (db.open) db.pragma(`wal_autocheckpoint = ${AUTO_PAGES}`)
    } catch {
      // closed meanwhile
    }
  }
  worker.on('error', (err) => log.warn({ err: err.message }, 'checkpoint thread failed; the writer checkpoints itself again'))
  worker.on('exit', () => {
    if (!stopping) restore()
  })
  worker.on('message', (m: { error?: string; log?: number }) => {
    if (m.error) log.debug({ err: m.error }, 'checkpoint failed; will retry')
    else if (typeof m.log === 'number' && m.log > restartPages && !catchingUp) {
      catchingUp = true
      setImmediate(() => {
        catchingUp = false
        try {
          if (db.open && !db.inTransaction) db.pragma('wal_checkpoint(PASSIVE)')
        } catch (err) {
          log.debug({ err: (err as Error).message }, 'checkpoint failed; will retry')
        }
      })
    }
  })
  return {
    async stop() {
      stopping = true
      worker.ref()
      const exited = new Promise<void>((r) => worker.once('exit', () => r()))
      worker.postMessage('stop')
      await exited
      restore()
    },
  }
}

function runWorker(input: WorkerInput): void {
  const db = new Database(input.file)
  db.pragma('busy_timeout = 1000')
  let timer: NodeJS.Timeout | null = null
  const tick = () => {
    try {
      // @NOTE with nothing new in the WAL this costs next to nothing
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[]
      if (r) parentPort?.postMessage({ log: r.log })
    } catch (err) {
      parentPort?.postMessage({ error: (err as Error).message })
    }
    timer = setTimeout(tick, input.intervalMs)
  }
  tick()
  parentPort?.on('message', (m) => {
    if (m !== 'stop') return
    if (timer) clearTimeout(timer)
    db.close()
    parentPort?.close()
  })
}

if (!isMainThread && (workerData as WorkerInput | undefined)?.file) runWorker(workerData as WorkerInput)

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { engagementKey } from './engagement-key.ts'
import * as schema from './schema.ts'

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url))

export type Sqlite = Database.Database

/** WAL pages past which a connection checkpoints inside its own commit (when nothing else has). */
export const BACKSTOP_CHECKPOINT_PAGES = 16_384
export type Drizzle = BetterSQLite3Database<typeof schema>

export interface Db {
  sqlite: Sqlite
  orm: Drizzle
  /** Throws when the database does not answer (the health check). */
  ping(): void
  close(): void
}

/**
 * Opens (creating if needed) the SQLite file in WAL mode and applies the
 * committed migrations. Several processes may open the same file: writes
 * wait on each other through busy_timeout.
 */
export function openDb(file: string, opts: { readonly?: boolean } = {}): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true })
  const sqlite = new Database(file, { readonly: opts.readonly ?? false })
  sqlite.pragma('busy_timeout = 10000')
  if (!opts.readonly) {
    // @NOTE switching to WAL needs a moment of exclusive access: busy_timeout does not cover it while another process creates the file
    retryBusy(() => sqlite.pragma('journal_mode = WAL'))
    sqlite.pragma('synchronous = NORMAL')
    // @NOTE the store process checkpoints on a thread of its own (checkpointer.ts) and keeps the WAL small; SQLite's
    // default (inside a commit every 1,000 pages) made every other build of a ranked list in a refresh worker pay
    // for a checkpoint (~25 ms of a 50,000-candidate build). Other connections only step in past 64 MB.
    sqlite.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`)
  }
  sqlite.pragma('cache_size = -64000')
  sqlite.pragma('temp_store = MEMORY')
  // the key of a like or repost, for migrations that rekey stored ones (drizzle/0007_compact_engagements.sql)
  sqlite.function('engagement_key', { deterministic: true }, (uri: unknown) => engagementKey(String(uri)))
  const orm = drizzle(sqlite, { schema })
  if (!opts.readonly) migrateWithRetry(orm)
  let closed = false
  return {
    sqlite,
    orm,
    ping() {
      sqlite.prepare('SELECT 1').get()
    },
    close() {
      if (closed) return
      closed = true
      sqlite.close()
    },
  }
}

// @NOTE drizzle wraps SQLite's error: its message names the query, the cause is SQLite's
const errText = (err: unknown) => `${String((err as Error)?.message ?? err)} ${String((err as { cause?: unknown })?.cause ?? '')}`
const isBusy = (err: unknown) => /busy|locked/i.test(errText(err))

/** Runs `fn` again (up to 20 times, waiting a little longer each time) while SQLite says another process is in the way. */
function retryBusy<T>(fn: () => T, alsoRetry?: RegExp): T {
  for (let attempt = 0; ; attempt++) {
    try {
      return fn()
    } catch (err) {
      if (attempt < 20 && (isBusy(err) || alsoRetry?.test(errText(err)))) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 + attempt * 25)
        continue
      }
      throw err
    }
  }
}

/**
 * Runs a write again while another process holds the database longer than
 * busy_timeout (a long transaction on a machine short of CPU), waiting
 * between tries without blocking the event loop; other errors are thrown.
 */
export async function whenNotBusy<T>(fn: () => T, onWait?: (attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return fn()
    } catch (err) {
      if (!isBusy(err)) throw err
      onWait?.(attempt)
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)))
    }
  }
}

function migrateWithRetry(orm: Drizzle): void {
  // @NOTE processes started together race to migrate; the loser sees SQLITE_BUSY or a table that now exists
  retryBusy(() => migrate(orm, { migrationsFolder: MIGRATIONS_FOLDER }), /already exists/i)
}

import type { Sqlite } from './db.ts'

/** Forgets how far a source was read: the next ingest of it starts from the beginning (a fresh demo file). */
export function forgetCursor(db: Sqlite, source: string): void {
  db.prepare('DELETE FROM cursors WHERE source = ?').run(source)
}

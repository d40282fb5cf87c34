import { randomBytes } from 'node:crypto'
import type { Sqlite } from './db.ts'

/**
 * A server-side secret by name: generated once and kept in SQLite
 * (`web_secrets`), so it survives restarts and every process using the same
 * file uses the same one (the first to store it wins).
 */
export function storedSecret(db: Sqlite, name: string): string {
  db.prepare('INSERT OR IGNORE INTO web_secrets (name, value, created_at) VALUES (?, ?, ?)').run(name, randomBytes(32).toString('base64url'), Date.now())
  return db.prepare('SELECT value FROM web_secrets WHERE name = ?').pluck().get(name) as string
}

import { createHash, randomBytes } from 'node:crypto'
import type { Sqlite } from './db.ts'

/*
 * The web pages' storage: browser sessions, the OAuth client's state and
 * session stores, and a generated cookie secret (tables in schema.ts).
 */

/** How long a browser session lasts. */
export const SESSION_TTL_MS = 14 * 86_400_000
/** How long an OAuth round trip may take. */
export const STATE_TTL_MS = 60 * 60_000

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url')

export interface WebSession {
  did: string
  handle: string | null
  expiresAt: number
}

/**
 * Browser sessions (the cookie carries a random id, signed; the table keeps
 * only its hash), the OAuth client's stores, and the cookie secret.
 */
export class WebSessionStore {
  private readonly db: Sqlite
  /** how long a browser session lasts (the cookie's max age) */
  readonly sessionTtlMs = SESSION_TTL_MS

  constructor(db: Sqlite) {
    this.db = db
  }

  /**
   * The secret that signs cookies: the configured one, else one generated
   * once and kept in SQLite (so every serve process on the file agrees and
   * sessions survive restarts).
   */
  cookieSecret(configured?: string): string {
    if (configured) return configured
    this.db
      .prepare('INSERT OR IGNORE INTO web_secrets (name, value, created_at) VALUES (?, ?, ?)')
      .run('cookie', randomBytes(32).toString('base64url'), Date.now())
    return this.db.prepare('SELECT value FROM web_secrets WHERE name = ?').pluck().get('cookie') as string
  }

  /** A new session for a DID; returns the raw id to put (signed) in the cookie. */
  create(did: string, handle: string | null, now = Date.now()): string {
    const id = randomBytes(32).toString('base64url')
    this.db
      .prepare('INSERT INTO web_sessions (id_hash, did, handle, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(sha256(id), did, handle, now, now + SESSION_TTL_MS)
    return id
  }

  get(id: string, now = Date.now()): WebSession | null {
    const row = this.db.prepare('SELECT did, handle, expires_at FROM web_sessions WHERE id_hash = ?').get(sha256(id)) as
      | { did: string; handle: string | null; expires_at: number }
      | undefined
    if (!row || row.expires_at <= now) return null
    return { did: row.did, handle: row.handle, expiresAt: row.expires_at }
  }

  /** Ends a session; returns how many sessions that DID still has. */
  delete(id: string): { did: string; remaining: number } | null {
    const row = this.db.prepare('DELETE FROM web_sessions WHERE id_hash = ? RETURNING did').get(sha256(id)) as { did: string } | undefined
    if (!row) return null
    const remaining = this.db.prepare('SELECT count(*) FROM web_sessions WHERE did = ? AND expires_at > ?').pluck().get(row.did, Date.now()) as number
    return { did: row.did, remaining }
  }

  prune(now = Date.now()): number {
    const a = this.db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?').run(now).changes
    const b = this.db.prepare('DELETE FROM oauth_states WHERE expires_at <= ?').run(now).changes
    return a + b
  }

  /** OAuth authorization states (PKCE verifier, DPoP key of the pending request), kept for an hour. */
  oauthStates<V>(): JsonStore<V> {
    return oauthStateStore<V>(this.db)
  }

  /** OAuth sessions (tokens and DPoP key), one per DID. */
  oauthSessions<V>(): JsonStore<V> {
    return oauthSessionStore<V>(this.db)
  }
}

/** A SimpleStore (what @atproto/oauth-client-node wants) over one of the oauth_* tables, values as JSON. */
export interface JsonStore<V> {
  get(key: string): V | undefined
  set(key: string, value: V): void
  del(key: string): void
}

function oauthStateStore<V>(db: Sqlite): JsonStore<V> {
  const get = db.prepare('SELECT value FROM oauth_states WHERE key = ? AND expires_at > ?').pluck()
  const set = db.prepare(
    'INSERT INTO oauth_states (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
  )
  const del = db.prepare('DELETE FROM oauth_states WHERE key = ?')
  return {
    get: (key) => {
      const v = get.get(key, Date.now()) as string | undefined
      return v === undefined ? undefined : (JSON.parse(v) as V)
    },
    set: (key, value) => void set.run(key, JSON.stringify(value), Date.now() + STATE_TTL_MS),
    del: (key) => void del.run(key),
  }
}

function oauthSessionStore<V>(db: Sqlite): JsonStore<V> {
  const get = db.prepare('SELECT value FROM oauth_sessions WHERE did = ?').pluck()
  const set = db.prepare(
    'INSERT INTO oauth_sessions (did, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (did) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  )
  const del = db.prepare('DELETE FROM oauth_sessions WHERE did = ?')
  return {
    get: (key) => {
      const v = get.get(key) as string | undefined
      return v === undefined ? undefined : (JSON.parse(v) as V)
    },
    set: (key, value) => void set.run(key, JSON.stringify(value), Date.now()),
    del: (key) => void del.run(key),
  }
}

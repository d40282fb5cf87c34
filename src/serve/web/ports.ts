/*
 * What the web pages need from storage, as small interfaces: the store's
 * WebSessionStore and PostReader (src/store) implement them, the wiring
 * passes them in.
 */

/** A signed-in browser session. */
export interface WebSession {
  did: string
  handle: string | null
  expiresAt: number
}

/** A key-value store of JSON values, the shape @atproto/oauth-client-node wants for its state and session stores. */
export interface JsonStore<V> {
  get(key: string): V | undefined
  set(key: string, value: V): void
  del(key: string): void
}

/** Browser sessions, the OAuth client's stores, and the cookie secret. */
export interface WebSessions {
  /** how long a browser session lasts */
  readonly sessionTtlMs: number
  /** the secret that signs cookies: the configured one, else one kept by the store */
  cookieSecret(configured?: string): string
  /** a new session; returns the raw id to put (signed) in the cookie */
  create(did: string, handle: string | null): string
  get(id: string): WebSession | null
  /** ends a session; says how many sessions that DID still has */
  delete(id: string): { did: string; remaining: number } | null
  /** forgets expired sessions and OAuth states */
  prune(): number
  oauthStates<V>(): JsonStore<V>
  oauthSessions<V>(): JsonStore<V>
}

/** Stored posts by URI: what previews and the feedback list show of them. */
export interface PostTexts {
  byUri(uris: string[]): Map<string, { text: string; author: string; createdAt: number }>
}

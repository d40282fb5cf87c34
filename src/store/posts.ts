import type { Sqlite } from './db.ts'

/** What a page shows of a stored post. */
export interface PostText {
  text: string
  author: string
  createdAt: number
}

/** URIs looked up per statement (SQLite's bound-parameter limit is far above it). */
const CHUNK = 200

/** Reads stored posts by URI, for pages that show their text (previews, feedback). */
export class PostReader {
  private readonly db: Sqlite

  constructor(db: Sqlite) {
    this.db = db
  }

  /** The stored posts among `uris` (a post not stored, or deleted, is missing from the map). */
  byUri(uris: string[]): Map<string, PostText> {
    const out = new Map<string, PostText>()
    for (let i = 0; i < uris.length; i += CHUNK) {
      const chunk = uris.slice(i, i + CHUNK)
      if (!chunk.length) continue
      const rows = this.db.prepare(`SELECT uri, author, text, created_at FROM posts WHERE uri IN (${chunk.map(() => '?').join(',')})`).all(...chunk) as {
        uri: string
        author: string
        text: string
        created_at: number
      }[]
      for (const r of rows) out.set(r.uri, { text: r.text, author: r.author, createdAt: r.created_at })
    }
    return out
  }
}

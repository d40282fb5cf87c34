/**
 * Page cursors: opaque to clients, they name the cached snapshot and the
 * last rank served. Paging walks one snapshot, so a refresh in between never
 * repeats or skips a post.
 */
export interface PageCursor {
  snapshot: number
  rank: number
}

const CURSOR_RE = /^([0-9a-z]{1,11})\.([0-9a-z]{1,7})$/

export function encodeCursor(c: PageCursor): string {
  return `${c.snapshot.toString(36)}.${c.rank.toString(36)}`
}

/** Parses a cursor; null when it is not one of ours. */
export function decodeCursor(s: string): PageCursor | null {
  const m = CURSOR_RE.exec(s)
  if (!m) return null
  const snapshot = Number.parseInt(m[1], 36)
  const rank = Number.parseInt(m[2], 36)
  if (!Number.isSafeInteger(snapshot) || !Number.isSafeInteger(rank) || snapshot < 1) return null
  return { snapshot, rank }
}

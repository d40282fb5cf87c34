import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Page cursors: opaque to clients, they name the cached snapshot and the
 * last rank served. Paging walks one snapshot, so a refresh in between never
 * repeats or skips a post. Each cursor carries a MAC over the snapshot, the
 * rank and what it was served for (the feed, the list key and the reader),
 * made with a server-side secret: a cursor cannot be made up, nor used by
 * another reader or on another feed.
 */
export interface PageCursor {
  snapshot: number
  rank: number
}

/** What a cursor is bound to. */
export interface CursorBinding {
  feed: string
  /** the list key of the snapshot (mix fingerprint, or per-reader key) */
  list: string
  /** the reader's DID; null for anonymous readers */
  reader: string | null
}

const MAC_CHARS = 22
const CURSOR_RE = /^([0-9a-z]{1,11})\.([0-9a-z]{1,7})\.([A-Za-z0-9_-]{22})$/

const macOf = (secret: string, c: PageCursor, b: CursorBinding): string =>
  createHmac('sha256', secret)
    .update(`cursor\n${c.snapshot}\n${c.rank}\n${b.feed}\n${b.list}\n${b.reader ?? ''}`)
    .digest('base64url')
    .slice(0, MAC_CHARS)

/** A cursor for a position in a snapshot, signed for what it is served for. */
export function encodeCursor(secret: string, c: PageCursor, b: CursorBinding): string {
  return `${c.snapshot.toString(36)}.${c.rank.toString(36)}.${macOf(secret, c, b)}`
}

/** Parses a cursor without checking its MAC (that needs the snapshot's binding: verifyCursor); null when it is not one of ours. */
export function decodeCursor(s: string): (PageCursor & { mac: string }) | null {
  const m = CURSOR_RE.exec(s)
  if (!m) return null
  const snapshot = Number.parseInt(m[1], 36)
  const rank = Number.parseInt(m[2], 36)
  if (!Number.isSafeInteger(snapshot) || !Number.isSafeInteger(rank) || snapshot < 1) return null
  return { snapshot, rank, mac: m[3] }
}

/** Whether a decoded cursor was made by this server for this binding. */
export function verifyCursor(secret: string, c: PageCursor & { mac: string }, b: CursorBinding): boolean {
  const want = Buffer.from(macOf(secret, c, b))
  const got = Buffer.from(c.mac)
  return got.length === want.length && timingSafeEqual(got, want)
}

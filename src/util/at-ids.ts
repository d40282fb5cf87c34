/**
 * AT Protocol identifiers: record keys that are TIDs (timestamp ids) and
 * at-uris, parsed without a library.
 */

/** A TID: 13 base32-sortable characters (see tidTimeMs). */
export const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/
/** An at-uri of a record: `at://<did>/<collection>/<rkey>` (groups: did, collection, rkey). */
export const AT_URI_RE = /^at:\/\/(did:[a-z]+:[a-zA-Z0-9._:%-]+)\/([a-zA-Z0-9.-]+)\/([a-zA-Z0-9._:~-]{1,512})$/

const B32 = '234567abcdefghijklmnopqrstuvwxyz'

/**
 * The time (ms since the epoch) a TID record key was minted at, or null
 * when the key is not a TID. A TID is 64 bits in 13 base32-sortable
 * characters: the first 11 hold the top 55 bits, of which the top 2 are
 * zero and the other 53 are the microseconds.
 */
export function tidTimeMs(rkey: string): number | null {
  if (!TID_RE.test(rkey)) return null
  let us = 0
  for (let i = 0; i < 11; i++) us = us * 32 + B32.indexOf(rkey[i])
  return Math.floor(us / 1000)
}

/**
 * A TID for a time in µs (clock id 0): the order of an event that carries no
 * repo revision, in the same sortable form as one. Revisions and event TIDs
 * compare as strings; later is larger.
 */
export function eventRev(us: number): string {
  let v = Math.max(0, Math.floor(us))
  let out = ''
  for (let i = 0; i < 11; i++) {
    out = B32[v % 32] + out
    v = Math.floor(v / 32)
  }
  return `${out}22`
}

/** Splits an at-uri into its parts, or null when it is not one. */
export function parseAtUri(uri: string): { did: string; collection: string; rkey: string } | null {
  const m = AT_URI_RE.exec(uri)
  return m ? { did: m[1], collection: m[2], rkey: m[3] } : null
}

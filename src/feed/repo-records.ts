import { readCapped } from '../score/guarded-fetch.ts'

/** One record of a `com.atproto.repo.listRecords` page. */
export interface RepoRecord {
  uri: string
  cid: string
  value: Record<string, unknown>
}

export interface ListRecordsOptions {
  /** an SSRF-guarded fetch (or the platform's, for local networks) */
  fetch: typeof fetch
  signal: AbortSignal
  /** records kept at most */
  max: number
  /** records looked at at most (when `keep` leaves some out); default `max` */
  maxScanned?: number
  /** which records to keep (all when unset) */
  keep?: (r: RepoRecord) => boolean
}

/** Records asked for per page (the method's maximum). */
const PAGE_SIZE = 100
/** A page's body is refused past this (100 records of a few hundred bytes each, with room to spare). */
const MAX_PAGE_BYTES = 1 << 20

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Pages through `com.atproto.repo.listRecords` of one collection of a repo,
 * newest first, until `max` records are kept, `maxScanned` were looked at,
 * or the collection ends. Every page is one bounded request.
 */
export async function listRecords(pds: string, repo: string, collection: string, opts: ListRecordsOptions): Promise<RepoRecord[]> {
  const out: RepoRecord[] = []
  const maxScanned = opts.maxScanned ?? opts.max
  let scanned = 0
  let cursor: string | undefined
  while (out.length < opts.max && scanned < maxScanned) {
    const u = new URL('/xrpc/com.atproto.repo.listRecords', pds)
    u.searchParams.set('repo', repo)
    u.searchParams.set('collection', collection)
    u.searchParams.set('limit', String(Math.min(PAGE_SIZE, maxScanned - scanned)))
    if (cursor) u.searchParams.set('cursor', cursor)
    const res = await opts.fetch(u, { signal: opts.signal, headers: { accept: 'application/json' } })
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      throw new Error(`listRecords answered ${res.status}`)
    }
    const body: unknown = JSON.parse(await readCapped(res, MAX_PAGE_BYTES, opts.signal))
    if (!isObj(body) || !Array.isArray(body.records)) throw new Error('listRecords answered without records')
    for (const r of body.records) {
      scanned++
      if (!isObj(r) || typeof r.uri !== 'string' || typeof r.cid !== 'string' || !isObj(r.value)) continue
      const rec = { uri: r.uri, cid: r.cid, value: r.value }
      if (opts.keep && !opts.keep(rec)) continue
      out.push(rec)
      if (out.length >= opts.max) break
    }
    const next = typeof body.cursor === 'string' && body.cursor.length <= 512 ? body.cursor : undefined
    // @NOTE a cursor that does not move would page forever
    if (!next || next === cursor || body.records.length === 0) break
    cursor = next
  }
  return out
}

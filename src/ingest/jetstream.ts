import { normalizeAccount, normalizeCommit } from './events.ts'
import type { IngestEvent } from '../contracts/events.ts'

/** The outcome of decoding one Jetstream message. */
export type Decoded = { ok: true; event: IngestEvent | null; cursor: number } | { ok: false; reason: string; cursor: number | null }

const MAX_LINE_BYTES = 1_000_000

/**
 * Decodes one Jetstream v1 JSON message into a normalized event. `event` is
 * null for kinds Skysift ignores (identity, other collections). Never throws.
 */
export function decodeJetstream(line: string): Decoded {
  if (line.length > MAX_LINE_BYTES) return { ok: false, reason: 'message too large', cursor: null }
  let msg: unknown
  try {
    msg = JSON.parse(line)
  } catch {
    return { ok: false, reason: 'not JSON', cursor: null }
  }
  if (typeof msg !== 'object' || msg === null) return { ok: false, reason: 'not an object', cursor: null }
  // biome-ignore lint/suspicious/noExplicitAny: a parsed message whose fields are each checked below before use
  const m = msg as Record<string, any>
  const timeUs = m.time_us
  if (!Number.isSafeInteger(timeUs) || timeUs <= 0) return { ok: false, reason: 'bad time_us', cursor: null }
  const timeMs = Math.floor(timeUs / 1000)
  switch (m.kind) {
    case 'commit': {
      const c = m.commit
      if (typeof c !== 'object' || c === null) return { ok: false, reason: 'commit missing', cursor: timeUs }
      const r = normalizeCommit({
        did: m.did,
        collection: c.collection,
        rkey: c.rkey,
        operation: c.operation,
        record: c.record,
        cid: c.cid,
        timeMs,
        timeUs,
        rev: c.rev,
      })
      if (r && 'reason' in r) return { ok: false, reason: r.reason, cursor: timeUs }
      return { ok: true, event: r, cursor: timeUs }
    }
    case 'account': {
      const a = m.account
      if (typeof a !== 'object' || a === null) return { ok: false, reason: 'account missing', cursor: timeUs }
      const r = normalizeAccount(a.did ?? m.did, a.active, a.status, timeUs)
      if ('reason' in r) return { ok: false, reason: r.reason, cursor: timeUs }
      return { ok: true, event: r, cursor: timeUs }
    }
    case 'identity':
      return { ok: true, event: null, cursor: timeUs }
    default:
      return { ok: false, reason: 'unknown kind', cursor: timeUs }
  }
}

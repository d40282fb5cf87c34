/**
 * Decoding at the edge: every source (Jetstream, relay firehose, replay)
 * turns repo operations into the normalized events of src/contracts/events.ts
 * here, validated once so later stages can trust them.
 */
import type { AccountEvent, EmbedKind, IngestEvent, MixEvent, MixRecordEntry, PostEvent } from '../contracts/events.ts'
import { COLLECTIONS, FEED_GENERATOR_COLLECTION, LIST_COLLECTION, WANTED_COLLECTIONS } from '../contracts/events.ts'
import { AT_URI_RE, eventRev, parseAtUri, TID_RE } from '../util/at-ids.ts'
import { MAX_OPTIONS_DEPTH } from '../util/canonical.ts'

/** An input that could not be turned into an event, with the reason. */
export interface Rejected {
  reason: string
}

export const MAX_TEXT_CHARS = 10_000

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2000}$/
const RKEY_RE = /^[a-zA-Z0-9._:~-]{1,512}$/
const CID_RE = /^[a-zA-Z0-9]{8,200}$/
const TAG_RE = /(?:^|\s)#([^\s#.,!?;:()[\]{}"'`]{1,64})/gu
const FUTURE_SLACK_MS = 5 * 60_000

export const isDid = (v: unknown): v is string => typeof v === 'string' && DID_RE.test(v)
export const isAtUri = (v: unknown): v is string => typeof v === 'string' && v.length < 3000 && AT_URI_RE.test(v)

/** The commit's revision when it is a TID, else the event's time as one (eventRev). */
export const revOr = (rev: unknown, us: number): string => (typeof rev === 'string' && TID_RE.test(rev) ? rev : eventRev(us))

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function strongRefUri(v: unknown): string | null | undefined {
  if (v === undefined) return undefined
  if (!isObj(v) || !isAtUri(v.uri)) return null
  return v.uri
}

function embedOf(embed: unknown): { kind: EmbedKind | null; quote: string | null } | Rejected {
  if (embed === undefined) return { kind: null, quote: null }
  if (!isObj(embed) || typeof embed.$type !== 'string') return { reason: 'embed without $type' }
  switch (embed.$type) {
    case 'app.bsky.embed.images':
      return { kind: 'images', quote: null }
    case 'app.bsky.embed.video':
      return { kind: 'video', quote: null }
    case 'app.bsky.embed.external':
      return { kind: 'external', quote: null }
    case 'app.bsky.embed.record': {
      const q = strongRefUri(embed.record)
      return { kind: 'record', quote: q ?? null }
    }
    case 'app.bsky.embed.recordWithMedia': {
      const rec = isObj(embed.record) ? strongRefUri(embed.record.record) : null
      return { kind: 'recordWithMedia', quote: rec ?? null }
    }
    default:
      // unknown embed types are legal (open union): keep the post, ignore the embed
      return { kind: null, quote: null }
  }
}

function tagsOf(text: string, facets: unknown): string[] {
  const tags = new Set<string>()
  if (Array.isArray(facets)) {
    for (const f of facets) {
      if (!isObj(f) || !Array.isArray(f.features)) continue
      for (const feat of f.features) {
        if (isObj(feat) && feat.$type === 'app.bsky.richtext.facet#tag' && typeof feat.tag === 'string' && feat.tag.length <= 640) {
          tags.add(feat.tag.toLowerCase())
        }
      }
    }
  }
  if (text.includes('#')) {
    for (const m of text.matchAll(TAG_RE)) tags.add(m[1].toLowerCase())
  }
  return [...tags].slice(0, 32)
}

/** Validates and normalizes an `app.bsky.feed.post` record. */
export function normalizePost(
  did: string,
  rkey: string,
  cid: string,
  record: unknown,
  eventTimeMs: number,
  rev: string = eventRev(eventTimeMs * 1000),
): PostEvent | Rejected {
  if (!isObj(record)) return { reason: 'post record is not an object' }
  const { text } = record
  if (typeof text !== 'string') return { reason: 'post text is not a string' }
  if (text.length > MAX_TEXT_CHARS) return { reason: `post text longer than ${MAX_TEXT_CHARS} chars` }
  if (!text.isWellFormed()) return { reason: 'post text is not well-formed unicode' }
  if (typeof record.createdAt !== 'string') return { reason: 'post createdAt missing' }
  const created = Date.parse(record.createdAt)
  if (!Number.isFinite(created)) return { reason: 'post createdAt is not a date' }
  let langs: string[] = []
  if (record.langs !== undefined) {
    if (!Array.isArray(record.langs) || record.langs.length > 8 || !record.langs.every((l) => typeof l === 'string' && l.length > 0 && l.length < 64)) {
      return { reason: 'post langs is not a list of language tags' }
    }
    langs = record.langs.map((l: string) => l.toLowerCase().split('-')[0])
  }
  let replyRoot: string | null = null
  let replyParent: string | null = null
  if (record.reply !== undefined) {
    if (!isObj(record.reply)) return { reason: 'post reply is not an object' }
    const root = strongRefUri(record.reply.root)
    const parent = strongRefUri(record.reply.parent)
    if (!root || !parent) return { reason: 'post reply needs root and parent strong refs' }
    replyRoot = root
    replyParent = parent
  }
  const embed = embedOf(record.embed)
  if ('reason' in embed) return embed
  const labels: string[] = []
  if (isObj(record.labels) && Array.isArray(record.labels.values)) {
    for (const l of record.labels.values) {
      if (isObj(l) && typeof l.val === 'string' && l.val.length <= 128) labels.push(l.val)
    }
  }
  // @NOTE a client clock can be wrong or hostile: a post never sorts later than when the network saw it
  const createdAt = created > eventTimeMs + FUTURE_SLACK_MS ? eventTimeMs : Math.min(created, eventTimeMs + FUTURE_SLACK_MS)
  return {
    t: 'post',
    uri: `at://${did}/${COLLECTIONS.post}/${rkey}`,
    cid,
    author: did,
    createdAt,
    text,
    langs: [...new Set(langs)],
    replyRoot,
    replyParent,
    embed: embed.kind,
    quote: embed.quote,
    tags: tagsOf(text, record.facets),
    labels: labels.slice(0, 16),
    rev,
  }
}

export const MAX_MIX_AGENTS = 16
export const MIX_WEIGHT_MIN = -100
export const MIX_WEIGHT_MAX = 100
export const MAX_MIX_AGENT_ID_CHARS = 64
export const MAX_MIX_OPTIONS_BYTES = 8 * 1024

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (!isObj(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** True for values JSON can carry unchanged (records decoded from CBOR may hold CIDs and bytes). */
function isJsonValue(v: unknown, depth: number): boolean {
  if (depth > MAX_OPTIONS_DEPTH) return false
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true
  if (typeof v === 'number') return Number.isFinite(v)
  if (Array.isArray(v)) return v.every((x) => isJsonValue(x, depth + 1))
  if (isPlainObject(v)) return Object.values(v).every((x) => isJsonValue(x, depth + 1))
  return false
}

/**
 * Validates and normalizes an `app.skysift.feed.mix` record. Only the shape
 * is checked here (the lexicon's limits); whether the agents exist and their
 * options fit is the serving node's business, against its own catalog.
 */
export function normalizeMix(did: string, rkey: string, record: unknown, eventTimeMs: number, rev: string = eventRev(eventTimeMs * 1000)): MixEvent | Rejected {
  if (!isObj(record)) return { reason: 'mix record is not an object' }
  const parts = isAtUri(record.feed) ? parseAtUri(record.feed) : null
  if (!parts || parts.collection !== FEED_GENERATOR_COLLECTION) return { reason: 'mix feed is not an at-uri of a feed generator' }
  if (typeof record.createdAt !== 'string') return { reason: 'mix createdAt missing' }
  const created = Date.parse(record.createdAt)
  if (!Number.isFinite(created)) return { reason: 'mix createdAt is not a date' }
  const { agents } = record
  if (!Array.isArray(agents)) return { reason: 'mix agents is not a list' }
  if (agents.length > MAX_MIX_AGENTS) return { reason: `mix has more than ${MAX_MIX_AGENTS} agents` }
  const out: MixRecordEntry[] = []
  for (let i = 0; i < agents.length; i++) {
    const a = agents[i]
    if (!isPlainObject(a)) return { reason: `mix agents.${i} is not an object` }
    if (typeof a.agent !== 'string' || a.agent.length === 0 || a.agent.length > MAX_MIX_AGENT_ID_CHARS || !a.agent.isWellFormed()) {
      return { reason: `mix agents.${i}.agent is not an agent id of 1 to ${MAX_MIX_AGENT_ID_CHARS} chars` }
    }
    if (typeof a.weight !== 'number' || !Number.isInteger(a.weight) || a.weight < MIX_WEIGHT_MIN || a.weight > MIX_WEIGHT_MAX) {
      return { reason: `mix agents.${i}.weight is not an integer from ${MIX_WEIGHT_MIN} to ${MIX_WEIGHT_MAX}` }
    }
    const entry: MixRecordEntry = { agent: a.agent, weight: a.weight }
    if (a.options !== undefined) {
      if (!isPlainObject(a.options) || !isJsonValue(a.options, 0)) return { reason: `mix agents.${i}.options is not a plain object` }
      if (Buffer.byteLength(JSON.stringify(a.options)) > MAX_MIX_OPTIONS_BYTES)
        return { reason: `mix agents.${i}.options larger than ${MAX_MIX_OPTIONS_BYTES} bytes` }
      if (Object.keys(a.options).length) entry.options = a.options
    }
    out.push(entry)
  }
  // @NOTE the newest record per feed wins: a clock far in the future must not pin an old choice forever
  const createdAt = created > eventTimeMs + FUTURE_SLACK_MS ? eventTimeMs : created
  return {
    t: 'mix',
    uri: `at://${did}/${COLLECTIONS.mix}/${rkey}`,
    author: did,
    feed: record.feed as string,
    agents: out,
    createdAt,
    rev,
  }
}

/**
 * Normalizes one repo operation. Returns null for collections Skysift does
 * not use, an event, or a Rejected with the reason the input is malformed.
 */
export function normalizeCommit(op: {
  did: unknown
  collection: unknown
  rkey: unknown
  operation: unknown
  record?: unknown
  cid?: unknown
  timeMs: number
  /** the event's time in µs when the source has it (orders versions when `rev` is missing) */
  timeUs?: number
  /** the commit's repo revision */
  rev?: unknown
}): IngestEvent | Rejected | null {
  const { did, collection, rkey, operation } = op
  if (!isDid(did)) return { reason: 'bad did' }
  if (typeof collection !== 'string') return { reason: 'bad collection' }
  if (typeof rkey !== 'string' || !RKEY_RE.test(rkey) || rkey === '.' || rkey === '..') return { reason: 'bad rkey' }
  const uri = `at://${did}/${collection}/${rkey}`
  const known = WANTED_COLLECTIONS.includes(collection)
  if (!known) return null
  if (operation === 'delete') return { t: 'delete', uri, collection, ...(typeof op.rev === 'string' && TID_RE.test(op.rev) ? { rev: op.rev } : {}) }
  if (operation !== 'create' && operation !== 'update') return { reason: `bad operation ${String(operation).slice(0, 20)}` }
  if (typeof op.cid !== 'string' || !CID_RE.test(op.cid)) return { reason: 'bad cid' }
  const record = op.record
  if (!isObj(record)) return { reason: 'record is not an object' }
  const rev = revOr(op.rev, op.timeUs ?? op.timeMs * 1000)
  switch (collection) {
    case COLLECTIONS.post:
      return normalizePost(did, rkey, op.cid, record, op.timeMs, rev)
    case COLLECTIONS.like:
    case COLLECTIONS.repost: {
      // likes and reposts cannot be edited; an update is replayed as a create (idempotent)
      const subject = strongRefUri(record.subject)
      if (!subject) return { reason: 'subject is not a strong ref' }
      return { t: collection === COLLECTIONS.like ? 'like' : 'repost', uri, author: did, subject }
    }
    case COLLECTIONS.follow: {
      if (!isDid(record.subject)) return { reason: 'follow subject is not a did' }
      return { t: 'follow', uri, author: did, subject: record.subject }
    }
    case COLLECTIONS.mix:
      return normalizeMix(did, rkey, record, op.timeMs, rev)
    case COLLECTIONS.block:
    case COLLECTIONS.listblock:
    case COLLECTIONS.listitem:
    case COLLECTIONS.visibility:
    case COLLECTIONS.profile:
      return normalizeGraphRecord(did, collection, rkey, record, rev)
  }
  return null
}

/** The `!no-unauthenticated` self-label: the author asks apps not to show their account to logged-out readers. */
export const NO_UNAUTHENTICATED = '!no-unauthenticated'

/**
 * Validates and normalizes the reader-graph and consent records: blocks,
 * block-list subscriptions, list members, and an author's `self` records
 * (visibility declaration, profile self-labels). `null` for a record Skysift
 * does not use (a consent collection under another record key).
 */
export function normalizeGraphRecord(
  did: string,
  collection: string,
  rkey: string,
  record: Record<string, unknown>,
  rev?: unknown,
): IngestEvent | Rejected | null {
  const uri = `at://${did}/${collection}/${rkey}`
  const revOf = typeof rev === 'string' && TID_RE.test(rev) ? rev : ''
  switch (collection) {
    case COLLECTIONS.block:
      if (!isDid(record.subject)) return { reason: 'block subject is not a did' }
      return { t: 'block', uri, author: did, subject: record.subject }
    case COLLECTIONS.listblock: {
      const list = isAtUri(record.subject) ? parseAtUri(record.subject) : null
      if (!list || list.collection !== LIST_COLLECTION) return { reason: 'listblock subject is not an at-uri of a list' }
      return { t: 'listblock', uri, author: did, list: record.subject as string }
    }
    case COLLECTIONS.listitem: {
      const list = isAtUri(record.list) ? parseAtUri(record.list) : null
      if (!list || list.collection !== LIST_COLLECTION) return { reason: 'listitem list is not an at-uri of a list' }
      // @NOTE only the list's owner can add members: an item in another repo names a list it cannot change
      if (list.did !== did) return { reason: 'listitem names a list of another repo' }
      if (!isDid(record.subject)) return { reason: 'listitem subject is not a did' }
      return { t: 'listitem', uri, list: record.list as string, subject: record.subject }
    }
    case COLLECTIONS.visibility: {
      if (rkey !== 'self') return null
      const hide = record.hideFromAlgorithmicRecommendations
      if (hide !== undefined && typeof hide !== 'boolean') return { reason: 'hideFromAlgorithmicRecommendations is not a boolean' }
      return { t: 'consent', did, kind: 'visibility', value: hide === true, rev: revOf }
    }
    case COLLECTIONS.profile: {
      if (rkey !== 'self') return null
      let noUnauth = false
      const labels = record.labels
      if (isObj(labels) && Array.isArray(labels.values)) {
        noUnauth = labels.values.some((l) => isObj(l) && l.val === NO_UNAUTHENTICATED)
      }
      return { t: 'consent', did, kind: 'profile', value: noUnauth, rev: revOf }
    }
  }
  return null
}

/** Normalizes an account status change; `timeUs` is the event's place in the source's order (its time in µs). */
export function normalizeAccount(did: unknown, active: unknown, status: unknown, timeUs: number): AccountEvent | Rejected {
  if (!isDid(did)) return { reason: 'bad did' }
  if (typeof active !== 'boolean') return { reason: 'account active is not a boolean' }
  if (status !== undefined && status !== null && typeof status !== 'string') return { reason: 'bad account status' }
  return { t: 'account', did, active, status: active ? null : ((status as string | undefined) ?? 'deactivated'), rev: eventRev(timeUs) }
}

export const isRejected = (v: unknown): v is Rejected => isObj(v) && typeof v.reason === 'string' && !('t' in v)

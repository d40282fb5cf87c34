import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { syntheticEvents, syntheticJsonl, writeSyntheticJsonl } from './synthetic.ts'
import type { JetstreamEvent, PostRecord, StrongRef } from './synthetic.ts'

const START = 1_725_911_162_329_308
const N = 50_000

const DID = /^did:plc:[a-z2-7]{24}$/
const TID = /^[2-7a-j][2-7a-z]{12}$/
const CID = /^bafyrei[a-h][a-z2-7]{50}[aeimquy4]$/
const BLOB_CID = /^bafkrei[a-h][a-z2-7]{50}[aeimquy4]$/
const POST_URI = /^at:\/\/did:plc:[a-z2-7]{24}\/app\.bsky\.feed\.post\/[2-7a-j][2-7a-z]{12}$/
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const COLLECTIONS = ['app.bsky.feed.post', 'app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.graph.follow']
const STATUSES = ['deactivated', 'takendown', 'deleted', 'suspended']

type Json = Record<string, unknown>

function keys(o: unknown): string[] {
  return Object.keys(o as Json)
}

function isSorted(o: unknown): boolean {
  const k = keys(o)
  return k.join(',') === [...k].sort().join(',')
}

function isoOf(timeUs: number): string {
  return new Date(Math.floor(timeUs / 1000)).toISOString()
}

/** Returns the problems with one parsed line (empty when it is a well-formed Jetstream event). */
function checkEvent(ev: Json): string[] {
  const bad: string[] = []
  const need = (ok: boolean, what: string): void => {
    if (!ok) bad.push(what)
  }
  need(typeof ev.did === 'string' && DID.test(ev.did), 'did')
  need(Number.isSafeInteger(ev.time_us), 'time_us')
  const kind = ev.kind
  if (kind === 'commit') {
    need(keys(ev).join() === 'did,time_us,kind,commit', 'event keys')
    const c = ev.commit as Json
    need(typeof c.rev === 'string' && TID.test(c.rev), 'rev')
    need(typeof c.rkey === 'string' && TID.test(c.rkey), 'rkey')
    need(COLLECTIONS.includes(c.collection as string), 'collection')
    if (c.operation === 'delete') {
      need(keys(c).join() === 'rev,operation,collection,rkey', 'delete keys')
      return bad
    }
    need(c.operation === 'create' || c.operation === 'update', 'operation')
    need(keys(c).join() === 'rev,operation,collection,rkey,record,cid', 'write keys')
    need(typeof c.cid === 'string' && CID.test(c.cid), 'cid')
    const r = c.record as Json
    need(r.$type === c.collection, 'record $type')
    need(isSorted(r), 'record keys sorted')
    need(typeof r.createdAt === 'string' && ISO.test(r.createdAt), 'createdAt')
    if (c.operation === 'create') need(r.createdAt === isoOf(ev.time_us as number), 'createdAt = event time')
    const ref = (x: unknown): boolean => {
      const s = x as Json
      return keys(s).join() === 'cid,uri' && CID.test(s.cid as string) && POST_URI.test(s.uri as string)
    }
    if (r.$type === 'app.bsky.feed.like' || r.$type === 'app.bsky.feed.repost') {
      need(keys(r).join() === '$type,createdAt,subject' && ref(r.subject), 'like/repost subject')
    } else if (r.$type === 'app.bsky.graph.follow') {
      need(keys(r).join() === '$type,createdAt,subject' && DID.test(r.subject as string), 'follow subject')
      need(r.subject !== ev.did, 'no self follow')
    } else {
      const p = r as unknown as PostRecord
      need(typeof p.text === 'string' && p.text.length >= 10 && p.text.length <= 300, 'text length')
      need(Buffer.byteLength(p.text) <= 3000, 'text bytes')
      if (p.langs !== undefined) need(Array.isArray(p.langs) && p.langs.length >= 1 && p.langs.length <= 2, 'langs')
      if (p.reply !== undefined) need(keys(p.reply).join() === 'parent,root' && ref(p.reply.parent) && ref(p.reply.root), 'reply')
      if (p.labels !== undefined) {
        need(p.labels.$type === 'com.atproto.label.defs#selfLabels' && p.labels.values.length > 0, 'labels')
      }
      if (p.embed !== undefined) {
        const e = p.embed
        need(isSorted(e), 'embed keys sorted')
        const blob = (b: unknown, mime: RegExp): boolean => {
          const o = b as Json
          return (
            keys(o).join() === '$type,mimeType,ref,size' &&
            o.$type === 'blob' &&
            mime.test(o.mimeType as string) &&
            BLOB_CID.test((o.ref as Json).$link as string) &&
            Number.isInteger(o.size)
          )
        }
        if (e.$type === 'app.bsky.embed.images') {
          need(e.images.length >= 1 && e.images.length <= 4, 'image count')
          for (const img of e.images) need(isSorted(img) && typeof img.alt === 'string' && blob(img.image, /^image\//), 'image')
        } else if (e.$type === 'app.bsky.embed.external') {
          need(isSorted(e.external) && /^https:\/\//.test(e.external.uri) && e.external.title.length > 0, 'external')
          if (e.external.thumb !== undefined) need(blob(e.external.thumb, /^image\//), 'thumb')
        } else if (e.$type === 'app.bsky.embed.video') {
          need(blob(e.video, /^video\/mp4$/), 'video')
        } else if (e.$type === 'app.bsky.embed.record') {
          need(ref(e.record), 'quote')
        } else {
          bad.push('embed $type')
        }
      }
      if (p.facets !== undefined) {
        need(p.facets.length > 0, 'facets')
        for (const f of p.facets) need(keys(f).join() === 'features,index' && keys(f.index).join() === 'byteEnd,byteStart', 'facet keys')
      }
    }
  } else if (kind === 'identity') {
    need(keys(ev).join() === 'did,time_us,kind,identity', 'event keys')
    const id = ev.identity as Json
    need(keys(id).join() === 'did,handle,seq,time', 'identity keys')
    need(id.did === ev.did, 'identity did')
    need(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(id.handle as string), 'handle')
    need(Number.isSafeInteger(id.seq), 'seq')
    need(id.time === isoOf(ev.time_us as number), 'identity time')
  } else if (kind === 'account') {
    need(keys(ev).join() === 'did,time_us,kind,account', 'event keys')
    const a = ev.account as Json
    need(a.did === ev.did && Number.isSafeInteger(a.seq) && a.time === isoOf(ev.time_us as number), 'account fields')
    if (a.active === true) need(keys(a).join() === 'active,did,seq,time', 'active account keys')
    else need(a.active === false && keys(a).join() === 'active,did,seq,status,time' && STATUSES.includes(a.status as string), 'inactive account')
  } else {
    bad.push(`kind ${String(kind)}`)
  }
  return bad
}

function postUri(ev: JetstreamEvent): string {
  if (ev.kind !== 'commit') throw new Error('not a commit')
  return `at://${ev.did}/${ev.commit.collection}/${ev.commit.rkey}`
}

let text = ''
let lines: string[] = []
let events: JetstreamEvent[] = []

beforeAll(() => {
  text = syntheticJsonl({ seed: 42, count: N, startTimeUs: START })
  lines = text.split('\n')
  expect(lines.pop()).toBe('') // trailing newline
  events = lines.map((l) => JSON.parse(l) as JetstreamEvent)
})

describe('syntheticEvents', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = syntheticJsonl({ seed: 7, count: 3000, startTimeUs: START })
    const b = syntheticJsonl({ seed: 7, count: 3000, startTimeUs: START })
    const c = syntheticJsonl({ seed: 8, count: 3000, startTimeUs: START })
    expect(a).toBe(b)
    expect(c).not.toBe(a)
    expect(a.split('\n')[0]).not.toBe(c.split('\n')[0])
    // The generator and the JSONL helper agree, and a prefix is stable.
    const fromGen = [...syntheticEvents({ seed: 7, count: 3000, startTimeUs: START })].map((e) => JSON.stringify(e))
    expect(fromGen.join('\n') + '\n').toBe(a)
    expect(syntheticJsonl({ seed: 42, count: 500, startTimeUs: START })).toBe(lines.slice(0, 500).join('\n') + '\n')
  })

  it('emits exactly count lines of well-formed Jetstream JSON', () => {
    expect(lines).toHaveLength(N)
    const problems: string[] = []
    for (let i = 0; i < lines.length && problems.length < 10; i++) {
      const bad = checkEvent(JSON.parse(lines[i]!) as Json)
      if (bad.length > 0) problems.push(`line ${i}: ${bad.join(', ')}: ${lines[i]!.slice(0, 300)}`)
    }
    expect(problems).toEqual([])
  })

  it('follows the live-network mix of kinds and collections', () => {
    const counts = new Map<string, number>()
    for (const ev of events) {
      const k = ev.kind === 'commit' ? `${ev.commit.collection}:${ev.commit.operation}` : ev.kind
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    const frac = (k: string): number => (counts.get(k) ?? 0) / N
    expect(frac('app.bsky.feed.post:create')).toBeGreaterThan(0.08)
    expect(frac('app.bsky.feed.post:create')).toBeLessThan(0.1)
    expect(frac('app.bsky.feed.like:create')).toBeGreaterThan(0.45)
    expect(frac('app.bsky.feed.like:create')).toBeLessThan(0.49)
    expect(frac('app.bsky.graph.follow:create')).toBeGreaterThan(0.31)
    expect(frac('app.bsky.graph.follow:create')).toBeLessThan(0.35)
    expect(frac('app.bsky.feed.repost:create')).toBeGreaterThan(0.05)
    expect(frac('app.bsky.feed.repost:create')).toBeLessThan(0.07)
    const rest = ['app.bsky.feed.post:delete', 'app.bsky.feed.like:delete', 'app.bsky.feed.post:update', 'identity', 'account']
    const restFrac = rest.reduce((s, k) => s + frac(k), 0)
    expect(restFrac).toBeGreaterThan(0.04)
    expect(restFrac).toBeLessThan(0.06)
    for (const k of rest) expect(counts.get(k) ?? 0, k).toBeGreaterThan(0)
    expect(frac('app.bsky.feed.post:update')).toBeLessThan(0.005)
    expect(frac('identity') + frac('account')).toBeLessThan(0.01)
    expect(counts.size).toBe(4 + rest.length)
  })

  it('has strictly increasing time_us and revs spaced at eventsPerSecond', () => {
    expect(events[0]!.time_us).toBe(START)
    for (let i = 1; i < events.length; i++) {
      if (!(events[i]!.time_us > events[i - 1]!.time_us)) throw new Error(`time_us not increasing at ${i}`)
    }
    const meanGap = (events[N - 1]!.time_us - START) / (N - 1)
    expect(meanGap).toBeGreaterThan(1250 * 0.95)
    expect(meanGap).toBeLessThan(1250 * 1.05)

    let lastRev = ''
    const rkeys = new Set<string>()
    for (const ev of events) {
      if (ev.kind !== 'commit') continue
      if (!(ev.commit.rev > lastRev)) throw new Error(`rev not increasing: ${ev.commit.rev} after ${lastRev}`)
      lastRev = ev.commit.rev
      if (ev.commit.operation === 'create') {
        const key = postUri(ev)
        if (rkeys.has(key)) throw new Error(`duplicate record ${key}`)
        rkeys.add(key)
      }
    }

    const fast = [...syntheticEvents({ seed: 3, count: 2000, startTimeUs: START, eventsPerSecond: 10_000 })]
    const gap = (fast[fast.length - 1]!.time_us - START) / (fast.length - 1)
    expect(gap).toBeGreaterThan(80)
    expect(gap).toBeLessThan(120)
  })

  it('ends at about now when startTimeUs is omitted', () => {
    const before = Date.now() * 1000
    const evs = [...syntheticEvents({ count: 2000 })]
    const after = Date.now() * 1000
    const last = evs[evs.length - 1]!.time_us
    expect(last).toBeGreaterThan(before - 5_000_000)
    expect(last).toBeLessThan(after + 5_000_000)
    expect(evs[0]!.time_us).toBeLessThan(last - 1_000_000) // ~2.5 s of traffic at 800/s
  })

  it('places hashtag and link facets at the right UTF-8 byte offsets', () => {
    let tagFacets = 0
    let multibyteBefore = 0
    let postsWithTags = 0
    let posts = 0
    for (const ev of events) {
      if (ev.kind !== 'commit' || ev.commit.operation !== 'create' || ev.commit.collection !== 'app.bsky.feed.post') continue
      posts++
      const rec = ev.commit.record
      if (rec.facets === undefined) continue
      const bytes = Buffer.from(rec.text, 'utf8')
      let hasTag = false
      let prevEnd = 0
      for (const f of rec.facets) {
        const { byteStart, byteEnd } = f.index
        expect(byteStart).toBeGreaterThanOrEqual(prevEnd) // sorted, non-overlapping
        expect(byteEnd).toBeLessThanOrEqual(bytes.length)
        prevEnd = byteEnd
        const slice = bytes.subarray(byteStart, byteEnd).toString('utf8')
        const feat = f.features[0]!
        expect(f.features).toHaveLength(1)
        if (feat.$type === 'app.bsky.richtext.facet#tag') {
          expect(slice).toBe('#' + feat.tag)
          expect(feat.tag).not.toMatch(/[\s#]/)
          tagFacets++
          hasTag = true
          if (byteStart !== rec.text.indexOf('#' + feat.tag)) multibyteBefore++
        } else {
          expect(slice).toBe(feat.uri)
          expect(rec.embed?.$type).toBe('app.bsky.embed.external')
        }
      }
      if (hasTag) postsWithTags++
    }
    expect(tagFacets).toBeGreaterThan(100)
    expect(multibyteBefore).toBeGreaterThan(10) // offsets really are bytes, not UTF-16 units
    expect(postsWithTags / posts).toBeGreaterThan(0.12)
    expect(postsWithTags / posts).toBeLessThan(0.18)
  })

  it('engagement mostly targets earlier posts, skewed toward a few', () => {
    const cids = new Map<string, string>()
    const likeCount = new Map<string, number>()
    let likes = 0
    let known = 0
    let cidMatch = 0
    let reposts = 0
    let repostsKnown = 0
    for (const ev of events) {
      if (ev.kind !== 'commit' || ev.commit.operation === 'delete') continue
      const c = ev.commit
      if (c.collection === 'app.bsky.feed.post') {
        cids.set(postUri(ev), c.cid)
        if (c.operation === 'create') likeCount.set(postUri(ev), 0)
      } else if (c.collection === 'app.bsky.feed.like') {
        likes++
        const s: StrongRef = c.record.subject
        const n = likeCount.get(s.uri)
        if (n !== undefined) {
          known++
          likeCount.set(s.uri, n + 1)
          if (cids.get(s.uri) === s.cid) cidMatch++
        }
      } else if (c.collection === 'app.bsky.feed.repost') {
        reposts++
        if (cids.has(c.record.subject.uri)) repostsKnown++
      }
    }
    expect(known / likes).toBeGreaterThan(0.93)
    expect(known / likes).toBeLessThan(0.995) // a few unknown posts
    expect(cidMatch / known).toBeGreaterThan(0.99)
    expect(repostsKnown / reposts).toBeGreaterThan(0.93)

    const counts = [...likeCount.values()].sort((a, b) => b - a)
    const total = counts.reduce((a, b) => a + b, 0)
    const top1 = counts.slice(0, Math.ceil(counts.length / 100)).reduce((a, b) => a + b, 0)
    expect(top1 / total).toBeGreaterThan(0.2) // heavy tail
    expect(counts[0]!).toBeGreaterThan(50)
    expect(counts.filter((n) => n === 0).length / counts.length).toBeGreaterThan(0.2) // many posts get nothing
  })

  it('deletes, updates and replies only reference records created earlier', () => {
    const posts = new Map<string, { did: string; cid: string; deleted: boolean; root: StrongRef | null }>()
    const likes = new Map<string, boolean>()
    let replies = 0
    let postCreates = 0
    let postDeletes = 0
    let likeDeletes = 0
    let updates = 0
    for (const ev of events) {
      if (ev.kind !== 'commit') continue
      const c = ev.commit
      const uri = postUri(ev)
      if (c.operation === 'delete') {
        if (c.collection === 'app.bsky.feed.post') {
          const p = posts.get(uri)
          expect(p, `delete of unknown post ${uri}`).toBeDefined()
          expect(p!.deleted).toBe(false)
          p!.deleted = true
          postDeletes++
        } else {
          expect(c.collection).toBe('app.bsky.feed.like')
          expect(likes.get(uri), `delete of unknown like ${uri}`).toBe(false)
          likes.set(uri, true)
          likeDeletes++
        }
      } else if (c.collection === 'app.bsky.feed.post') {
        if (c.operation === 'update') {
          const p = posts.get(uri)
          expect(p, `update of unknown post ${uri}`).toBeDefined()
          expect(p!.deleted).toBe(false)
          expect(c.cid).not.toBe(p!.cid)
          p!.cid = c.cid
          updates++
          continue
        }
        postCreates++
        const reply = c.record.reply
        let root: StrongRef | null = null
        if (reply !== undefined) {
          replies++
          const parent = posts.get(reply.parent.uri)
          expect(parent, 'reply to unknown post').toBeDefined()
          // The root is the parent's root, or the parent itself when it is a top-level post.
          const expectedRoot = parent!.root?.uri ?? reply.parent.uri
          expect(reply.root.uri).toBe(expectedRoot)
          root = reply.root
        }
        const quote = c.record.embed
        if (quote?.$type === 'app.bsky.embed.record') expect(posts.has(quote.record.uri)).toBe(true)
        posts.set(uri, { did: ev.did, cid: c.cid, deleted: false, root })
      } else if (c.collection === 'app.bsky.feed.like') {
        likes.set(uri, false)
      }
    }
    expect(postDeletes).toBeGreaterThan(100)
    expect(likeDeletes).toBeGreaterThan(100)
    expect(updates).toBeGreaterThan(10)
    expect(replies / postCreates).toBeGreaterThan(0.25)
    expect(replies / postCreates).toBeLessThan(0.35)
  })

  it('writes posts in several languages with varied content', () => {
    const langs = new Map<string, number>()
    const embeds = new Map<string, number>()
    let posts = 0
    let labels = 0
    let emoji = 0
    let positive = 0
    let negative = 0
    const texts = new Set<string>()
    for (const ev of events) {
      if (ev.kind !== 'commit' || ev.commit.operation !== 'create' || ev.commit.collection !== 'app.bsky.feed.post') continue
      const r = ev.commit.record
      posts++
      texts.add(r.text)
      const key = r.langs === undefined ? 'none' : r.langs.join('+')
      langs.set(key, (langs.get(key) ?? 0) + 1)
      if (r.embed !== undefined) embeds.set(r.embed.$type, (embeds.get(r.embed.$type) ?? 0) + 1)
      if (r.labels !== undefined) labels++
      if (/\p{Extended_Pictographic}/u.test(r.text)) emoji++
      if (/\b(love|wonderful|best|amazing|beautiful)\b/i.test(r.text)) positive++
      if (/\b(terrible|angry|awful|disappointed|mess)\b/i.test(r.text)) negative++
    }
    const en = (langs.get('en') ?? 0) / posts
    expect(en).toBeGreaterThan(0.48)
    expect(en).toBeLessThan(0.62)
    for (const l of ['ja', 'pt', 'de', 'es', 'fr', 'ko', 'none']) expect(langs.get(l) ?? 0, l).toBeGreaterThan(0)
    expect([...langs.keys()].some((k) => k.includes('+'))).toBe(true)
    for (const t of ['app.bsky.embed.images', 'app.bsky.embed.external', 'app.bsky.embed.video', 'app.bsky.embed.record']) {
      expect(embeds.get(t) ?? 0, t).toBeGreaterThan(0)
    }
    expect(labels).toBeGreaterThan(0)
    expect(labels / posts).toBeLessThan(0.02)
    expect(emoji / posts).toBeGreaterThan(0.15)
    expect(positive).toBeGreaterThan(100)
    expect(negative).toBeGreaterThan(50)
    expect(texts.size / posts).toBeGreaterThan(0.8)
  })

  it('validates options', () => {
    expect(() => syntheticJsonl({ count: -1 })).toThrow(RangeError)
    expect(() => syntheticJsonl({ count: 1.5 })).toThrow(RangeError)
    expect(() => syntheticJsonl({ count: 1, eventsPerSecond: 0 })).toThrow(RangeError)
    expect(() => syntheticJsonl({ count: 1, authors: 1 })).toThrow(RangeError)
    expect(syntheticJsonl({ count: 0 })).toBe('')
    const small = syntheticJsonl({ count: 1000, authors: 3, seed: 5, startTimeUs: START }).trim().split('\n')
    const dids = new Set(small.map((l) => (JSON.parse(l) as JetstreamEvent).did))
    expect(dids.size).toBe(3) // only the population acts
  })
})

describe('writeSyntheticJsonl', () => {
  it('streams the same bytes as syntheticJsonl', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skysift-synth-'))
    try {
      const file = join(dir, 'events.jsonl')
      await writeSyntheticJsonl(file, { seed: 42, count: 20_000, startTimeUs: START })
      const written = await readFile(file, 'utf8')
      expect(written).toBe(lines.slice(0, 20_000).join('\n') + '\n')
      await expect(writeSyntheticJsonl(join(dir, 'missing', 'x.jsonl'), { count: 10 })).rejects.toThrow(/ENOENT/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

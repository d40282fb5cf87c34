/**
 * A realistic store, generated directly through the writer (no Jetstream
 * file, no queues): `posts` posts spread evenly over the last `hours` hours
 * (newest about now), scored by the given static agent instances exactly as
 * a score worker would, and likes on a Pareto-ish share of them so the
 * engagement agent has something to rank. Deterministic for a seed.
 */
import type { IngestEvent, PostEvent } from '../src/contracts/events.ts'
import type { AgentHost, AgentInstance } from '../src/score/host.ts'
import { scoreBatch } from '../src/score/score-stage.ts'
import type { BatchWriter } from '../src/store/writer.ts'

export interface StoreGenOptions {
  posts: number
  /** the posts' created_at spans this many hours back from `now` */
  hours: number
  /** likes per post on average (engagement events written too) */
  likesPerPost?: number
  seed?: number
  /** store jobs per transaction */
  group?: number
  /** events per store job */
  batch?: number
  now?: number
  onProgress?: (posts: number) => void
}

const WORDS = (
  'the a and of to in is it that for on with as this was at by be from or have an are not but what all were when we there can more one about ' +
  'sky sunset coffee train rain music game cat dog city book tonight finally new love today morning weekend art photo movie album concert guitar ' +
  'code typescript rust outage release bug deploy science space physics biology astronomy nasa research telescope climate chemistry election news'
).split(' ')
const SCIENCE = ['science', 'space', 'physics', 'research', 'telescope', 'nasa', 'astronomy', 'climate']
const LANGS: string[][] = [['en'], ['en'], ['en'], ['en'], ['en'], ['ja'], ['de'], ['pt'], ['es'], ['fr'], []]

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
function b32(rnd: () => number, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += B32[Math.floor(rnd() * 32)]
  return s
}

/** Writes the store; returns how many posts and likes were written and how long it took. */
export async function generateStore(
  writer: BatchWriter,
  host: AgentHost,
  instances: AgentInstance[],
  o: StoreGenOptions,
): Promise<{ posts: number; likes: number; ms: number }> {
  const rnd = prng(o.seed ?? 11)
  const now = o.now ?? Date.now()
  const spanMs = o.hours * 3_600_000
  const batch = o.batch ?? 2000
  const group = o.group ?? 8
  const likesPerPost = o.likesPerPost ?? 0.5
  const authors = Array.from({ length: Math.max(100, Math.floor(o.posts / 20)) }, () => `did:plc:${b32(rnd, 24)}`)
  const likers = Array.from({ length: 5000 }, () => `did:plc:${b32(rnd, 24)}`)
  const recent: string[] = []
  const t0 = performance.now()
  let written = 0
  let likes = 0
  let pending: IngestEvent[] = []
  let jobs: { id: string; events: IngestEvent[]; eventTime: number }[] = []
  let seq = 0
  const flushJobs = async () => {
    if (!jobs.length) return
    const scored = await Promise.all(jobs.map((j) => scoreBatch(host, instances, { ...j, source: 'gen' }, now)))
    for (const r of writer.writeGroup(scored)) if (!r.ok) throw r.error
    jobs = []
  }
  const flush = async () => {
    if (!pending.length) return
    jobs.push({ id: `gen-${++seq}`, events: pending, eventTime: now })
    pending = []
    if (jobs.length >= group) await flushJobs()
  }
  for (let i = 0; i < o.posts; i++) {
    const author = authors[Math.floor(rnd() * rnd() * authors.length)]
    const n = 4 + Math.floor(rnd() * 24)
    const words: string[] = []
    for (let k = 0; k < n; k++) words.push(WORDS[Math.floor(rnd() * WORDS.length)])
    if (rnd() < 0.08) words.splice(Math.floor(rnd() * words.length), 0, SCIENCE[Math.floor(rnd() * SCIENCE.length)])
    const uri = `at://${author}/app.bsky.feed.post/3k${b32(rnd, 11)}`
    const reply = rnd() < 0.3 && recent.length ? recent[Math.floor(rnd() * recent.length)] : null
    const p: PostEvent = {
      t: 'post',
      uri,
      cid: `bafyrei${b32(rnd, 52)}`,
      author,
      // evenly spread, oldest first, so the writer sees them in about the order the network would
      createdAt: Math.floor(now - spanMs + (spanMs * (i + 1)) / o.posts),
      text: words.join(' '),
      langs: LANGS[Math.floor(rnd() * LANGS.length)],
      replyRoot: reply,
      replyParent: reply,
      embed: rnd() < 0.25 ? (['images', 'external', 'video', 'record'] as const)[Math.floor(rnd() * 4)] : null,
      quote: null,
      tags: rnd() < 0.1 ? [words[0]] : [],
      labels: [],
    }
    pending.push(p)
    written++
    recent.push(uri)
    if (recent.length > 2000) recent.splice(0, 1000)
    // likes on recent posts, skewed so a few posts get most of them
    const nl = rnd() < likesPerPost ? 1 + Math.floor(rnd() * rnd() * 8) : 0
    for (let k = 0; k < nl; k++) {
      const liker = likers[Math.floor(rnd() * likers.length)]
      const subject = recent[recent.length - 1 - Math.floor(rnd() * rnd() * Math.min(recent.length, 500))]
      pending.push({ t: 'like', uri: `at://${liker}/app.bsky.feed.like/3l${b32(rnd, 11)}`, author: liker, subject })
      likes++
    }
    if (pending.length >= batch) await flush()
    if (o.onProgress && i % 100_000 === 99_999) o.onProgress(i + 1)
  }
  await flush()
  await flushJobs()
  return { posts: written, likes, ms: performance.now() - t0 }
}

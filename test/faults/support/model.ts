/**
 * An independent model of what the store must hold after a replay, computed
 * from the raw Jetstream lines (not through Skysift's decoder): the events
 * the store must count, the live posts, and each live post's likes, reading
 * the file in order, as test/pipeline.test.ts does.
 *
 * Two things in the writer depend on the order batches arrive in, and the
 * stage processes do not keep file order (a score worker runs 2 jobs at
 * once; a job whose process was killed is retried after the others), so the
 * model also says which comparisons are order-independent:
 *  - account status events purge an author's posts and block later ones;
 *    what remains depends on the order, so posts of authors with account
 *    events are only checked to be created and not deleted;
 *  - a like is counted only when its post is already stored, so a like
 *    stored before its post's batch is not counted. `likeLines` lets the
 *    caller tell which likes were exposed to that.
 */
import fs from 'node:fs'
import readline from 'node:readline'

const WANTED = new Set(['app.bsky.feed.post', 'app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.graph.follow', 'app.skysift.feed.mix'])

export interface ModelPost {
  author: string
  /** line (1-based) of the create */
  line: number
  likes: number
}

export interface Model {
  lines: number
  /** normalized events the store must count (events_stored) */
  events: number
  byKind: Record<string, number>
  /** live posts, file order */
  posts: Map<string, ModelPost>
  /** every post created and never deleted (order-independent) */
  createdNotDeleted: Set<string>
  /** authors with account status events */
  accountAuthors: Set<string>
  /** live likes of live posts: like uri → [subject, line] */
  likes: Map<string, { subject: string; line: number }>
  /** post uri → line of its delete */
  deletedAt: Map<string, number>
  /** the (1-based) lines that carry an event the store counts */
  eventLines: Set<number>
}

/** Feeds the model one line (1-based line numbers; blank lines count, as in the replay source). */
export class ModelBuilder {
  private n = 0
  private events = 0
  private readonly byKind: Record<string, number> = {}
  private readonly posts = new Map<string, ModelPost>()
  private readonly created = new Map<string, string>()
  private readonly deleted = new Map<string, number>()
  private readonly accountAuthors = new Set<string>()
  private readonly likes = new Map<string, { subject: string; line: number }>()
  private readonly tombstones = new Set<string>()
  private readonly inactive = new Set<string>()
  private readonly eventLines = new Set<number>()

  /** `parsed` lets a caller that already parsed the line skip the second parse. */
  add(line: string, parsed?: unknown, lineNo?: number): void {
    this.n = lineNo ?? this.n + 1
    if (!line.trim()) return
    const e = (parsed ?? JSON.parse(line)) as Record<string, any>
    if (e.kind === 'account') {
      this.count('account')
      this.accountAuthors.add(e.did)
      if (e.account.active) this.inactive.delete(e.did)
      else {
        this.inactive.add(e.did)
        for (const [u, p] of this.posts) if (p.author === e.did) this.dropPost(u)
      }
      return
    }
    if (e.kind !== 'commit') return
    const { collection, operation, rkey, record } = e.commit
    if (!WANTED.has(collection)) return
    const uri = `at://${e.did}/${collection}/${rkey}`
    if (operation === 'delete') {
      this.count('delete')
      this.tombstones.add(uri)
      if (collection === 'app.bsky.feed.post') {
        if (!this.deleted.has(uri)) this.deleted.set(uri, this.n)
        this.dropPost(uri)
      }
      if (collection === 'app.bsky.feed.like' && this.likes.has(uri)) {
        const p = this.posts.get(this.likes.get(uri)!.subject)
        if (p) p.likes = Math.max(0, p.likes - 1)
        this.likes.delete(uri)
      }
      return
    }
    const kind = { 'app.bsky.feed.post': 'post', 'app.bsky.feed.like': 'like', 'app.bsky.feed.repost': 'repost', 'app.bsky.graph.follow': 'follow', 'app.skysift.feed.mix': 'mix' }[collection as string]!
    this.count(kind)
    if (kind === 'post') {
      if (!this.created.has(uri)) this.created.set(uri, e.did)
      if (!this.tombstones.has(uri) && !this.inactive.has(e.did)) {
        const had = this.posts.get(uri)
        this.posts.set(uri, had ?? { author: e.did, line: this.n, likes: 0 })
      }
    } else if (kind === 'like') {
      const p = this.posts.get(record.subject.uri)
      if (p && !this.tombstones.has(uri) && !this.likes.has(uri)) {
        this.likes.set(uri, { subject: record.subject.uri, line: this.n })
        p.likes++
      }
    }
  }

  private count(kind: string): void {
    this.events++
    this.eventLines.add(this.n)
    this.byKind[kind] = (this.byKind[kind] ?? 0) + 1
  }

  private dropPost(uri: string): void {
    this.posts.delete(uri)
  }

  build(): Model {
    const createdNotDeleted = new Set([...this.created.keys()].filter((u) => !this.deleted.has(u)))
    const likes = new Map([...this.likes].filter(([, v]) => this.posts.has(v.subject)))
    return { lines: this.n, events: this.events, byKind: { ...this.byKind }, posts: this.posts, createdNotDeleted, accountAuthors: this.accountAuthors, likes, deletedAt: this.deleted, eventLines: this.eventLines }
  }
}

/** The model of a JSONL file. */
export async function modelOfFile(file: string): Promise<Model> {
  const b = new ModelBuilder()
  const rl = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
  for await (const line of rl) b.add(line)
  return b.build()
}

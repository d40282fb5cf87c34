/**
 * An independent model of what the store must hold after a replay, computed
 * from the raw Jetstream lines (not through Skysift's decoder): the events
 * the store must count, the live posts with their newest version, each live
 * post's likes, and every account's last status, reading the file in order.
 *
 * The stage processes do not keep file order (a score worker runs 2 jobs at
 * once; a job whose process was killed is handed back after later ones), and
 * the model asks the store to be exactly what the file says in its order
 * anyway: facts are applied by their order on the network, not by arrival.
 *  - a post is live when it was created, never deleted, and its author's
 *    last account status is active (or there was none): an account that
 *    goes inactive hides its posts, new ones too, and gets them back when it
 *    is active again; a live post's stored version is its newest one;
 *  - a like counts when it was never taken back and its post is live, also
 *    when its post's account was inactive at the time.
 */
import fs from 'node:fs'
import readline from 'node:readline'

const WANTED = new Set(['app.bsky.feed.post', 'app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.graph.follow', 'app.skysift.feed.mix'])

export interface ModelPost {
  author: string
  /** line (1-based) of the create */
  line: number
  likes: number
  /** the CID of the newest version */
  cid: string
}

/** Account statuses that hide an account's posts (as the writer's INACTIVE; other statuses change nothing). */
export const HIDING_STATUSES = new Set(['deleted', 'takendown', 'suspended', 'deactivated'])

export interface Model {
  lines: number
  /** normalized events the store must count (events_stored) */
  events: number
  byKind: Record<string, number>
  /** live posts, file order */
  posts: Map<string, ModelPost>
  /** posts created and never deleted whose author's last status hides them */
  hidden: Map<string, ModelPost>
  /** each account's last status that changes anything ('active' or one of HIDING_STATUSES) */
  accounts: Map<string, string>
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
  /** every post created and not deleted, whatever its author's status */
  private readonly posts = new Map<string, ModelPost>()
  private readonly deleted = new Map<string, number>()
  private readonly accounts = new Map<string, string>()
  private readonly likes = new Map<string, { subject: string; line: number }>()
  private readonly tombstones = new Set<string>()
  private readonly eventLines = new Set<number>()

  /** `parsed` lets a caller that already parsed the line skip the second parse. */
  add(line: string, parsed?: unknown, lineNo?: number): void {
    this.n = lineNo ?? this.n + 1
    if (!line.trim()) return
    const e = (parsed ?? JSON.parse(line)) as Record<string, any>
    if (e.kind === 'account') {
      this.count('account')
      if (e.account.active) this.accounts.set(e.did, 'active')
      else if (HIDING_STATUSES.has(e.account.status ?? 'deactivated')) this.accounts.set(e.did, e.account.status ?? 'deactivated')
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
        this.posts.delete(uri)
      }
      if (collection === 'app.bsky.feed.like') this.likes.delete(uri)
      return
    }
    const kind = {
      'app.bsky.feed.post': 'post',
      'app.bsky.feed.like': 'like',
      'app.bsky.feed.repost': 'repost',
      'app.bsky.graph.follow': 'follow',
      'app.skysift.feed.mix': 'mix',
    }[collection as string]!
    this.count(kind)
    if (kind === 'post') {
      if (!this.tombstones.has(uri)) {
        const had = this.posts.get(uri)
        if (had) had.cid = e.commit.cid
        else this.posts.set(uri, { author: e.did, line: this.n, likes: 0, cid: e.commit.cid })
      }
    } else if (kind === 'like') {
      // a like of a post created earlier (the synthetic stream likes nothing older)
      if (this.posts.has(record.subject.uri) && !this.tombstones.has(uri) && !this.likes.has(uri))
        this.likes.set(uri, { subject: record.subject.uri, line: this.n })
    }
  }

  private count(kind: string): void {
    this.events++
    this.eventLines.add(this.n)
    this.byKind[kind] = (this.byKind[kind] ?? 0) + 1
  }

  build(): Model {
    const posts = new Map<string, ModelPost>()
    const hidden = new Map<string, ModelPost>()
    for (const [uri, p] of this.posts) (HIDING_STATUSES.has(this.accounts.get(p.author) ?? 'active') ? hidden : posts).set(uri, { ...p, likes: 0 })
    const likes = new Map([...this.likes].filter(([, v]) => posts.has(v.subject)))
    for (const l of likes.values()) posts.get(l.subject)!.likes++
    return {
      lines: this.n,
      events: this.events,
      byKind: { ...this.byKind },
      posts,
      hidden,
      accounts: this.accounts,
      likes,
      deletedAt: this.deleted,
      eventLines: this.eventLines,
    }
  }
}

/** The model of a JSONL file. */
export async function modelOfFile(file: string): Promise<Model> {
  const b = new ModelBuilder()
  const rl = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
  for await (const line of rl) b.add(line)
  return b.build()
}

import type { Feed } from '../../feeds.ts'
import { BadCursorError, MAX_FILL_ROUNDS } from '../../feed/skeleton.ts'
import { decodeCursor, encodeCursor, verifyCursor } from '../../rank/cursor.ts'
import { XrpcError } from '../errors.ts'
import type { EdgeList, EdgeView, ReaderPlacement } from './edge-view.ts'

/** A page as an edge serves it: the items' JSON (made once per cached page), their feedContexts, the next cursor. */
export interface EdgePage {
  feedJson: string
  /** the items' feedContexts (one array per cached page: usage counting keys on it) */
  contexts: string[]
  cursor?: string
}

/** Told of every first page served: the feed, and who read it (null: anonymous). */
export type FirstPageSeen = (feed: Feed, reader: string | null) => void

/** Pages kept made at most (per process), and the characters of their JSON; past either they are all made again. */
const MAX_PAGES = 20_000
const MAX_PAGE_CHARS = 16_000_000

const notReady = (message: string) => new XrpcError(503, 'NotReady', message)

const secretOrNotReady = (s: string | undefined): string => {
  if (!s) throw notReady('this edge node has no cursor secret yet: the primary has not published (is SKYSIFT_EDGE_PUBLISH on there?)')
  return s
}

interface MadePage {
  version: number
  feedJson: string
  contexts: string[]
  nextAfter: number | null
  /** the cursor anonymous readers get after this page, and the secret it was signed with */
  anonCursor?: { secret: string; cursor: string }
}

/**
 * getFeedSkeleton on an edge node, with the primary's answers (src/feed/skeleton.ts): a first page from the reader's
 * placement (else the feed's anonymous list), a later one from the snapshot its cursor names; posts deleted or by
 * authors hiding from feeds skipped, then the reader's filter (anonymous: authors who ask not to be shown to them;
 * signed in: their blocks either way), filled from further down the list as the primary fills, so the pages and
 * cursors of both are the same and a cursor from either pages on the other.
 */
export class EdgePages {
  private readonly view: EdgeView
  private readonly configSecret: string | undefined
  private readonly pages = new Map<string, MadePage>()
  private pageChars = 0

  constructor(view: EdgeView, opts: { cursorSecret?: string } = {}) {
    this.view = view
    this.configSecret = opts.cursorSecret
  }

  private secret(): string | Promise<string> {
    const s = this.configSecret ?? this.view.cursorSecret()
    return s instanceof Promise ? s.then(secretOrNotReady) : secretOrNotReady(s)
  }

  /**
   * One page of a feed for a reader (null: anonymous). `touch` is told of first pages.
   *
   * @NOTE what the view holds in memory comes without a promise, and is not awaited: a page served from memory
   * takes no turn of the microtask queue
   */
  async skeleton(feed: Feed, reader: string | null, limit: number, cursor: string | undefined, touch: FirstPageSeen): Promise<EdgePage> {
    const view = this.view
    if (!view.caughtUp) throw notReady('this edge node has not read the deletions the primary published yet; try again in a moment')
    let list: EdgeList | null
    let after = 0
    if (cursor) {
      const c = decodeCursor(cursor)
      if (!c) throw new BadCursorError('malformed cursor')
      const got = view.snapshot(c.snapshot)
      list = got instanceof Promise ? await got : got
      // @NOTE an expired snapshot ends paging rather than restarting it, so nothing repeats (as on the primary)
      if (!list) return { feedJson: '[]', contexts: [] }
      const secret = this.secret()
      if (list.feed !== feed.uri || !verifyCursor(secret instanceof Promise ? await secret : secret, c, { feed: feed.uri, list: list.key, reader })) {
        throw new BadCursorError('cursor not valid for this feed and reader')
      }
      after = c.rank
    } else {
      touch(feed, reader)
      const placed = reader ? this.placed(feed, reader) : null
      list = (placed instanceof Promise ? await placed : placed) ?? (await this.anonList(feed))
    }
    let excluded: ReadonlySet<string> | null = null
    if (reader) {
      const p = view.reader(reader)
      excluded = (p instanceof Promise ? await p : p).excluded
    }
    const page = this.page(list, after, limit, reader === null, excluded)
    const out: EdgePage = { feedJson: page.feedJson, contexts: page.contexts }
    if (page.nextAfter !== null) {
      const got = this.secret()
      const secret = got instanceof Promise ? await got : got
      // @NOTE every anonymous reader of a page gets the same cursor: signed once per page (and secret)
      if (reader === null && page.anonCursor?.secret === secret) out.cursor = page.anonCursor.cursor
      else {
        out.cursor = encodeCursor(secret, { snapshot: list.id, rank: page.nextAfter }, { feed: feed.uri, list: list.key, reader })
        if (reader === null) page.anonCursor = { secret, cursor: out.cursor }
      }
    }
    return out
  }

  /** The snapshot the primary placed a signed-in reader's first page of a feed in; null when it has not (or it is gone). */
  private placed(feed: Feed, reader: string): EdgeList | null | Promise<EdgeList | null> {
    const of = (p: ReaderPlacement): EdgeList | null | Promise<EdgeList | null> => {
      const id = p.feeds.get(feed.uri)
      if (id === undefined) return null
      const got = this.view.snapshot(id)
      return got instanceof Promise ? got.then((l) => (l?.feed === feed.uri ? l : null)) : got?.feed === feed.uri ? got : null
    }
    const p = this.view.reader(reader)
    return p instanceof Promise ? p.then(of) : of(p)
  }

  /** The feed's anonymous list (what readers the primary has not placed read too); NotReady when there is none. */
  private async anonList(feed: Feed): Promise<EdgeList> {
    const view = this.view
    const read = async () => {
      const id = await view.anonPointer(feed.uri)
      const list = id === undefined ? null : await view.snapshot(id)
      return { id, list: list?.feed === feed.uri ? list : null }
    }
    let { id, list } = await read()
    if (!list) {
      // the pointer read a moment ago may be older than the snapshot's life: read it again once
      await view.reloadShared()
      ;({ id, list } = await read())
    }
    if (!list) {
      throw notReady(
        id === undefined
          ? 'this edge node has no list of this feed yet: the primary has not published one (is SKYSIFT_EDGE_PUBLISH on there?)'
          : 'the list of this feed the primary published is gone from Redis; the primary publishes it again',
      )
    }
    return list
  }

  /**
   * A page after rank `after`, cached per (snapshot, after, limit, anonymous or not) while no change was read, for
   * readers without blocks; made each time for readers with blocks.
   */
  private page(list: EdgeList, after: number, limit: number, anon: boolean, excluded: ReadonlySet<string> | null): MadePage {
    const version = this.view.version
    if (excluded) return this.make(list, after, limit, anon, excluded, version)
    const k = `${list.id}:${after}:${limit}:${anon ? 'a' : 's'}`
    const hit = this.pages.get(k)
    if (hit && hit.version === version) return hit
    const made = this.make(list, after, limit, anon, null, version)
    if (this.pages.size >= MAX_PAGES || this.pageChars > MAX_PAGE_CHARS) {
      this.pages.clear()
      this.pageChars = 0
    }
    this.pages.set(k, made)
    this.pageChars += made.feedJson.length
    return made
  }

  private make(list: EdgeList, after: number, limit: number, anon: boolean, excluded: ReadonlySet<string> | null, version: number): MadePage {
    const { hidden, noUnauth } = this.view
    const authors = list.authors
    const ok: ((i: number) => boolean) | null = anon
      ? hidden.size || noUnauth.size
        ? (i) => !hidden.has(authors[i]) && !noUnauth.has(authors[i])
        : null
      : hidden.size || excluded
        ? (i) => !hidden.has(authors[i]) && !excluded?.has(authors[i])
        : null
    const { items, nextAfter } = this.allowed(list, after, limit, ok)
    const contexts = items.map((i) => list.contexts[i])
    const feedJson = JSON.stringify(items.map((i) => ({ post: list.uris[i], feedContext: list.contexts[i] })))
    return { version, feedJson, contexts, nextAfter }
  }

  /** Up to `limit` live items after rank `after` (as indices; rank = index + 1): the primary's SnapshotPages.pageOf. */
  private live(list: EdgeList, after: number, limit: number): number[] {
    const { deleted, hidden } = this.view
    const out: number[] = []
    const { uris, authors } = list
    for (let i = Math.max(0, after); i < uris.length && out.length < limit; i++) {
      if (deleted.has(uris[i]) || hidden.has(authors[i])) continue
      out.push(i)
    }
    return out
  }

  /** The primary's Skeletons.allowed: the reader's filter, and the page filled from further down. */
  private allowed(list: EdgeList, after: number, limit: number, ok: ((i: number) => boolean) | null): { items: number[]; nextAfter: number | null } {
    const items = this.live(list, after, limit)
    if (!ok || items.every(ok)) return { items, nextAfter: items.length === limit ? items[items.length - 1] + 1 : null }
    const out = items.filter(ok)
    let last = items
    for (let round = 0; out.length < limit && last.length === limit && round < MAX_FILL_ROUNDS; round++) {
      last = this.live(list, last[last.length - 1] + 1, limit)
      for (const i of last) if (ok(i)) out.push(i)
    }
    if (out.length >= limit) return { items: out.slice(0, limit), nextAfter: out[limit - 1] + 1 }
    return { items: out, nextAfter: last.length === limit ? last[last.length - 1] + 1 : null }
  }
}

import type { Feed } from '../../feeds.ts'
import { BadCursorError, MAX_FILL_ROUNDS } from '../../feed/skeleton.ts'
import { decodeCursor, encodeCursor, verifyCursor } from '../../rank/cursor.ts'
import { XrpcError } from '../errors.ts'
import type { EdgeList, EdgeView } from './edge-view.ts'

/** A page as an edge serves it: the items' JSON (made once per cached page), their feedContexts, the next cursor. */
export interface EdgePage {
  feedJson: string
  /** the items' feedContexts (one array per cached page: usage counting keys on it) */
  contexts: string[]
  cursor?: string
}

/** What a first page told: the feed, who read it (null: anonymous), and whether the primary had placed them. */
export type FirstPageSeen = (feed: Feed, reader: string | null) => void

/** Pages kept made at most (per node); past it they are all made again. */
const MAX_PAGES = 20_000

const notReady = (message: string) => new XrpcError(503, 'NotReady', message)

interface MadePage {
  version: number
  feedJson: string
  contexts: string[]
  nextAfter: number | null
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

  constructor(view: EdgeView, opts: { cursorSecret?: string } = {}) {
    this.view = view
    this.configSecret = opts.cursorSecret
  }

  private async secret(): Promise<string> {
    const s = this.configSecret ?? (await this.view.cursorSecret())
    if (!s) throw notReady('this edge node has no cursor secret yet: the primary has not published (is SKYSIFT_EDGE_PUBLISH on there?)')
    return s
  }

  /** One page of a feed for a reader (null: anonymous). `touch` is told of first pages. */
  async skeleton(feed: Feed, reader: string | null, limit: number, cursor: string | undefined, touch: FirstPageSeen): Promise<EdgePage> {
    const view = this.view
    if (!view.caughtUp) throw notReady('this edge node has not read the deletions the primary published yet; try again in a moment')
    let list: EdgeList | null
    let after = 0
    if (cursor) {
      const c = decodeCursor(cursor)
      if (!c) throw new BadCursorError('malformed cursor')
      list = await view.snapshot(c.snapshot)
      // @NOTE an expired snapshot ends paging rather than restarting it, so nothing repeats (as on the primary)
      if (!list) return { feedJson: '[]', contexts: [] }
      if (list.feed !== feed.uri || !verifyCursor(await this.secret(), c, { feed: feed.uri, list: list.key, reader })) {
        throw new BadCursorError('cursor not valid for this feed and reader')
      }
      after = c.rank
    } else {
      touch(feed, reader)
      list = await this.first(feed, reader)
    }
    const excluded = reader ? (await view.reader(reader)).excluded : null
    const page = this.page(list, after, limit, reader === null, excluded)
    const out: EdgePage = { feedJson: page.feedJson, contexts: page.contexts }
    if (page.nextAfter !== null)
      out.cursor = encodeCursor(await this.secret(), { snapshot: list.id, rank: page.nextAfter }, { feed: feed.uri, list: list.key, reader })
    return out
  }

  /** The snapshot a first page is read from: the reader's placement, else the anonymous list. */
  private async first(feed: Feed, reader: string | null): Promise<EdgeList> {
    const view = this.view
    if (reader) {
      const id = (await view.reader(reader)).feeds.get(feed.uri)
      const placed = id === undefined ? null : await view.snapshot(id)
      if (placed?.feed === feed.uri) return placed
    }
    let id = await view.anonPointer(feed.uri)
    let list = id === undefined ? null : await view.snapshot(id)
    if (list?.feed !== feed.uri) list = null
    if (!list) {
      // the pointer read a moment ago may be older than the snapshot's life: read it again once
      await view.reloadShared()
      id = await view.anonPointer(feed.uri)
      list = id === undefined ? null : await view.snapshot(id)
      if (list?.feed !== feed.uri) list = null
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
    if (this.pages.size >= MAX_PAGES) this.pages.clear()
    this.pages.set(k, made)
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

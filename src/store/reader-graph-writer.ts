import type { BlockEvent, ConsentEvent, DeleteEvent, EngagementEvent, ListBlockEvent, ListItemEvent, ReaderEvent } from '../contracts/events.ts'
import { COLLECTIONS } from '../contracts/events.ts'
import { parseAtUri, tidTimeMs } from '../util/at-ids.ts'
import type { Sqlite } from './db.ts'
import { PostLog } from './post-log.ts'

/** Counter (in `counters`) that moves whenever a reader's blocks or block lists change. */
export const GRAPH_VERSION = 'reader_graph_version'
/** Counter (in `counters`) that moves whenever an author's consent flags change. */
export const CONSENT_VERSION = 'consent_version'

/**
 * The writer's part for readers' graphs and authors' consent: blocks, block
 * lists and their members, readers' own likes, and the consent flags. Runs
 * inside the BatchWriter's transaction (one call per event), so every
 * statement is an upsert or guarded, like the rest of the writer.
 */
export class ReaderGraphWriter {
  private readonly st
  private readonly log: PostLog

  constructor(db: Sqlite) {
    this.log = new PostLog(db)
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      isTombstoned: p('SELECT 1 FROM tombstones WHERE uri = ?').pluck(),
      // @NOTE a reader: seen signed in (readers) or with a saved mix (mixes)
      isReader: p(
        'SELECT 1 FROM (SELECT ? AS did) r WHERE EXISTS (SELECT 1 FROM readers WHERE did = r.did) OR EXISTS (SELECT 1 FROM mixes WHERE subscriber = r.did)',
      ).pluck(),
      isSeenReader: p('SELECT 1 FROM readers WHERE did = ?').pluck(),
      seen: p(`INSERT INTO readers (did, first_seen, last_seen) VALUES (@did, @now, @now)
        ON CONFLICT(did) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`),
      landed: p(`INSERT INTO readers (did, first_seen, last_seen, backfilled_at) VALUES (@did, @now, @now, @at)
        ON CONFLICT(did) DO UPDATE SET backfilled_at = excluded.backfilled_at, attempts = 0, next_try_at = 0, claimed_until = 0`),
      // a new block-list subscription: the list's members come with the next backfill of the reader
      refetch: p('UPDATE readers SET backfilled_at = NULL, next_try_at = 0 WHERE did = ? AND backfilled_at IS NOT NULL'),
      insertBlock: p('INSERT INTO blocks (uri, author, subject) VALUES (?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      deleteBlock: p('DELETE FROM blocks WHERE uri = ?'),
      insertListBlock: p('INSERT INTO list_blocks (uri, author, list) VALUES (?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      listBlockOf: p('SELECT list FROM list_blocks WHERE uri = ?').pluck(),
      deleteListBlock: p('DELETE FROM list_blocks WHERE uri = ?'),
      isBlockList: p('SELECT 1 FROM list_blocks WHERE list = ? LIMIT 1').pluck(),
      dropListItems: p('DELETE FROM list_items WHERE list = ?'),
      insertListItem: p('INSERT INTO list_items (uri, list, subject) VALUES (?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      deleteListItem: p('DELETE FROM list_items WHERE uri = ?'),
      insertLike: p('INSERT INTO reader_likes (uri, author, subject, at) VALUES (?, ?, ?, ?) ON CONFLICT(uri) DO NOTHING'),
      deleteLike: p('DELETE FROM reader_likes WHERE uri = ?'),
      hideOf: p('SELECT hide FROM author_consent WHERE did = ?').pluck(),
      noUnauthOf: p('SELECT no_unauth FROM author_consent WHERE did = ?').pluck(),
      // @NOTE batches arrive out of order (parallel scoring, retries): an older revision never overwrites a newer one;
      // a revision-less event (a source that does not say) applies as it comes
      setHide: p(`INSERT INTO author_consent (did, hide, hide_rev, updated_at) VALUES (@did, @value, @rev, @now)
        ON CONFLICT(did) DO UPDATE SET hide = excluded.hide, hide_rev = excluded.hide_rev,
          updated_at = CASE WHEN hide = excluded.hide THEN updated_at ELSE excluded.updated_at END
        WHERE excluded.hide_rev = '' OR excluded.hide_rev >= author_consent.hide_rev`),
      setNoUnauth: p(`INSERT INTO author_consent (did, no_unauth, profile_rev, updated_at) VALUES (@did, @value, @rev, @now)
        ON CONFLICT(did) DO UPDATE SET no_unauth = excluded.no_unauth, profile_rev = excluded.profile_rev,
          updated_at = CASE WHEN no_unauth = excluded.no_unauth THEN updated_at ELSE excluded.updated_at END
        WHERE excluded.profile_rev = '' OR excluded.profile_rev >= author_consent.profile_rev`),
      bump: p('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1'),
    }
  }

  /** A reader seen (a mix record from the firehose): their follows, blocks and likes are kept from now on, and their graph is backfilled. */
  seen(did: string, now: number): void {
    this.st.seen.run({ did, now })
  }

  /**
   * The end marker of a backfill: the reader's graph landed. It comes last in its batch, after the records (kept
   * because the backfill claimed the reader's row first), so a block-list subscription in the batch does not ask
   * for another backfill.
   */
  reader(e: ReaderEvent, now: number): void {
    this.st.landed.run({ did: e.did, now, at: e.backfilledAt })
  }

  /** Keeps a block where either side is a reader. */
  block(e: BlockEvent): boolean {
    const st = this.st
    if (!(st.isReader.get(e.author) || st.isReader.get(e.subject)) || st.isTombstoned.get(e.uri)) return false
    if (st.insertBlock.run(e.uri, e.author, e.subject).changes) st.bump.run(GRAPH_VERSION)
    return true
  }

  /** Keeps a reader's block-list subscription. */
  listblock(e: ListBlockEvent): boolean {
    const st = this.st
    if (!st.isReader.get(e.author) || st.isTombstoned.get(e.uri)) return false
    const known = !!st.isBlockList.get(e.list)
    if (st.insertListBlock.run(e.uri, e.author, e.list).changes) {
      st.bump.run(GRAPH_VERSION)
      // a list no reader subscribed to before: its members are fetched with the reader's next backfill
      if (!known) st.refetch.run(e.author)
    }
    return true
  }

  /** Keeps a member of a block list some reader subscribes to. */
  listitem(e: ListItemEvent): boolean {
    const st = this.st
    if (!st.isBlockList.get(e.list) || st.isTombstoned.get(e.uri)) return false
    if (st.insertListItem.run(e.uri, e.list, e.subject).changes) st.bump.run(GRAPH_VERSION)
    return true
  }

  /** Keeps a reader's own like (who liked what, for personal agents). */
  like(e: EngagementEvent, now: number): void {
    const st = this.st
    if (e.t !== 'like' || !st.isSeenReader.get(e.author) || st.isTombstoned.get(e.uri)) return
    const rkey = parseAtUri(e.uri)?.rkey
    st.insertLike.run(e.uri, e.author, e.subject, (rkey && tidTimeMs(rkey)) ?? now)
  }

  /** An author's consent flag, by revision (newer wins). */
  consent(e: ConsentEvent, now: number): boolean {
    return this.setConsent(e.did, e.kind, e.value, e.rev, now)
  }

  /** A deleted record of this module's collections (and readers' likes); other deletes are left alone. */
  deleted(e: DeleteEvent, now: number): void {
    const st = this.st
    switch (e.collection) {
      case COLLECTIONS.like:
        st.deleteLike.run(e.uri)
        return
      case COLLECTIONS.block:
        if (st.deleteBlock.run(e.uri).changes) st.bump.run(GRAPH_VERSION)
        return
      case COLLECTIONS.listitem:
        if (st.deleteListItem.run(e.uri).changes) st.bump.run(GRAPH_VERSION)
        return
      case COLLECTIONS.listblock: {
        const list = st.listBlockOf.get(e.uri) as string | undefined
        if (list === undefined) return
        st.deleteListBlock.run(e.uri)
        // the list's members go with its last subscription
        if (!st.isBlockList.get(list)) st.dropListItems.run(list)
        st.bump.run(GRAPH_VERSION)
        return
      }
      case COLLECTIONS.visibility:
      case COLLECTIONS.profile: {
        const at = parseAtUri(e.uri)
        // @NOTE a missing record means false; the delete's revision keeps an older create arriving later from winning
        if (at && at.rkey === 'self') this.setConsent(at.did, e.collection === COLLECTIONS.visibility ? 'visibility' : 'profile', false, e.rev ?? '', now)
        return
      }
    }
  }

  private setConsent(did: string, kind: 'visibility' | 'profile', value: boolean, rev: string, now: number): boolean {
    const st = this.st
    const before = ((kind === 'visibility' ? st.hideOf : st.noUnauthOf).get(did) as number | undefined) ?? 0
    if (!(kind === 'visibility' ? st.setHide : st.setNoUnauth).run({ did, value: value ? 1 : 0, rev, now }).changes) return false
    if (before !== (value ? 1 : 0)) {
      st.bump.run(CONSENT_VERSION)
      // @NOTE logged as deletions: pages already cached leave the author's posts out within a recheck (SnapshotPages.pageOf),
      // and the post check there reads the flag; a later "false" brings them back with the next build
      if (kind === 'visibility' && value) this.log.deletingAuthor(did)
    }
    return true
  }
}

import type { Feed } from '../feeds.ts'
import type { Logger } from '../logger.ts'
import type { AgentHost } from '../score/host.ts'
import type { FollowGraph } from '../store/follow-graph.ts'
import type { ReaderFilter } from '../store/reader-filter.ts'
import type { ListBuilder } from './lists.ts'
import type { FeedbackStore, InstanceRegistration, MixesStore, RefreshQueue } from './ports.ts'
import type { SnapshotPages } from './snapshot-pages.ts'

/** What the feed use-cases (FeedService and the parts it is made of) are given. */
export interface FeedServiceDeps {
  feeds: Feed[]
  host: AgentHost
  mixes: MixesStore
  /** stored snapshots of ranked lists, and pages of them */
  pages: SnapshotPages
  /** builds ranked lists */
  lists: ListBuilder
  log: Logger
  cacheTtlMs: number
  /** where rebuilds are asked of refresh workers; without it lists are rebuilt here */
  refreshQueue?: RefreshQueue
  /** the reader's follow graph, for personal agents */
  graph?: Pick<FollowGraph, 'context'>
  /** readers' feedback; without it there is no personal layer */
  interactions?: FeedbackStore
  /** tells score workers about static agent instances a new mix uses */
  instances?: InstanceRegistration
  /** told the feedContext of every item served (usage counting) */
  onServed?: (contexts: string[]) => void
  /** told, for every first page, whether its shared list was fresh, stale (served, refresh asked) or missing (built now) */
  onCacheLookup?: (outcome: 'fresh' | 'stale' | 'miss') => void
  /** which posts a reader may be shown (consent, blocks): pages are filled past the ones they may not */
  readerFilter?: Pick<ReaderFilter, 'pageFilter'>
  /** told of every signed-in reader (a request, a saved mix, a web sign-in): their graph is backfilled the first time */
  onReader?: (did: string) => void
  /**
   * told of a reader whose first pages may have changed: a mix saved or deleted, feedback stored or undone (`seen`:
   * feedback that only marks posts seen, which apps send in batches while the reader scrolls). `feed`: the feed a
   * mix was saved or deleted for. A saved mix waits for what it returns (a bounded wait) before it is answered.
   */
  onReaderChanged?: (did: string, what: 'mix' | 'feedback' | 'seen', feed?: Feed) => void | Promise<void>
  /** the newest candidates a preview ranks (SKYSIFT_PREVIEW_CANDIDATES) */
  previewCandidates?: number
  /** previews waiting their turn at most (SKYSIFT_PREVIEW_QUEUE); more are refused */
  previewQueue?: number
  /** signs paging cursors (SKYSIFT_CURSOR_SECRET or one kept in SQLite); without it, one made for this process */
  cursorSecret?: string
}

import { UnrecoverableError } from 'bullmq'
import type { Feed } from '../feeds.ts'
import type { RefreshJob } from '../contracts/jobs.ts'
import type { SnapshotInfo } from '../store/snapshots.ts'
import type { ListBuilder } from './lists.ts'
import { listKey } from './skeleton.ts'
import type { SnapshotPages } from './snapshot-pages.ts'
import { resolveMix } from '../rank/mix.ts'
import type { AgentHost } from '../score/host.ts'
import type { FollowGraph } from '../store/follow-graph.ts'

export interface RefreshDeps {
  feeds: Feed[]
  host: AgentHost
  pages: SnapshotPages
  lists: ListBuilder
  graph: FollowGraph
  /** how long a built list is fresh; one built within half of it is not rebuilt (unless the job asks for a complete one) */
  cacheTtlMs: number
}

/**
 * A refresh job: rebuilds the (feed, mix) list a reader found stale, for its
 * subscriber when the mix is personal. A list built a moment ago is left
 * alone. An unknown feed fails the job for good.
 */
export function refreshList(d: RefreshDeps, job: RefreshJob | undefined): SnapshotInfo | { skipped: true } {
  const feed = d.feeds.find((f) => f.uri === job?.feed)
  if (!feed || !job) throw new UnrecoverableError(`unknown feed ${String(job?.feed)}`)
  const mix = resolveMix(d.host, job.agents, feed.base)
  const subscriber = mix.personal ? (job.subscriber ?? null) : null
  const key = listKey(mix, subscriber)
  const latest = d.pages.latest(feed.uri, key)
  if (!job.complete && latest && Date.now() - latest.builtAt < d.cacheTtlMs / 2) return { skipped: true }
  return d.lists.build(feed, mix, Date.now(), { key, subscriber: subscriber ? d.graph.context(subscriber) : undefined })
}

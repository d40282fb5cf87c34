import type { Logger } from '../logger.ts'
import type { AgentHost, AgentInstance } from '../score/host.ts'
import { CandidateRepository } from '../store/candidates.ts'
import type { Sqlite } from '../store/db.ts'
import { SnapshotRepository } from '../store/snapshots.ts'
import { ListBuilder } from './lists.ts'
import { SnapshotPages } from './snapshot-pages.ts'

/** Options of openLists (the config's cacheSize and snapshotTtlMs, and what a process may run). */
export interface ListOptions {
  cacheSize: number
  snapshotTtlMs: number
  /** whether ranking may call an agent in this process (otherwise only its stored scores count); every agent by default */
  mayRun?: (inst: AgentInstance) => boolean
  /** how long a served page trusts the last look at the store (RECHECK_MS by default) */
  recheckMs?: number
  /** agent instances with a column in memory at most (SKYSIFT_AGENT_INSTANCES) */
  agentInstances?: number
}

/** The stored lists of a connection, as paged (SnapshotPages) and as built (ListBuilder), on the connection's repositories. */
export function openLists(db: Sqlite, host: AgentHost, log: Logger, opts: ListOptions): { pages: SnapshotPages; lists: ListBuilder } {
  const pages = new SnapshotPages(SnapshotRepository.of(db), log, opts)
  const candidates = CandidateRepository.of(db)
  const lists = new ListBuilder({ candidates, scores: candidates, pages }, host, log, opts)
  return { pages, lists }
}

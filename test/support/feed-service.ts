import path from 'node:path'
import { AppContext } from '../../src/context.ts'
import { silentLogger } from '../../src/logger.ts'
import type { FeedServiceDeps } from '../../src/feed/deps.ts'
import { openLists } from '../../src/feed/open-lists.ts'
import { FeedService } from '../../src/feed/service.ts'
import { FollowGraph } from '../../src/store/follow-graph.ts'
import { MixStore } from '../../src/store/mixes.ts'
import { tempDir, testConfig } from './resources.ts'

/**
 * A FeedService on a fresh SQLite file with the example feeds, its store,
 * stored lists and follow graph, without queues or HTTP; `deps` adds or replaces
 * what a test is about. `close` closes the file and removes it.
 */
export function storeFeedService(deps: (ctx: AppContext) => Partial<FeedServiceDeps> = () => ({})): {
  ctx: AppContext
  feeds: FeedService
  close: () => Promise<void>
} {
  const t = tempDir()
  const ctx = new AppContext(testConfig({ dbPath: path.join(t.dir, 'skysift.db') }), silentLogger)
  const feeds = new FeedService({
    feeds: ctx.feeds,
    host: ctx.host,
    mixes: new MixStore(ctx.db.sqlite),
    ...openLists(ctx.db.sqlite, ctx.host, silentLogger, ctx.config),
    graph: new FollowGraph(ctx.db.sqlite),
    log: silentLogger,
    cacheTtlMs: 60_000,
    ...deps(ctx),
  })
  return {
    ctx,
    feeds,
    async close() {
      await ctx.close()
      t.cleanup()
    },
  }
}

import { getPds } from '@atproto/identity'
import type { AppContext } from '../context.ts'
import type { Logger } from '../logger.ts'
import { jobId, QUEUE } from '../contracts/jobs.ts'
import { producerQueue } from '../contracts/queues.ts'
import { createGuardedFetch } from '../score/guarded-fetch.ts'
import { ReaderStore } from '../store/readers.ts'
import type { StoreBatch } from '../contracts/jobs.ts'
import { withTimeout } from '../util/timeout.ts'
import { ReaderBackfill } from './reader-backfill.ts'

/**
 * The readers' backfill of a serving process, wired to the context: DIDs
 * resolved with the server's cached IdResolver, repos read through the SSRF
 * guard (private addresses only with SKYSIFT_ALLOW_INSECURE_HTTP, for local
 * networks), records handed to the store writer on the `store` queue.
 */
export function startReaderBackfill(ctx: AppContext, log: Logger, onLanded: (did: string) => void): { backfill: ReaderBackfill; close(): Promise<void> } {
  const c = ctx.config
  const storeQueue = producerQueue<StoreBatch>(QUEUE.store, c.redisUrl, c.queuePrefix)
  storeQueue.on('error', (err) => log.debug({ err: err.message }, 'store queue error'))
  const guarded = createGuardedFetch({ allowPrivateNetwork: c.allowInsecureHttp })
  const backfill = new ReaderBackfill(
    {
      readers: new ReaderStore(ctx.db.sqlite),
      resolvePds: async (did) => getPds(await ctx.idResolver.did.ensureResolve(did)) ?? null,
      enqueue: async (batch) => {
        await withTimeout(storeQueue.add('batch', batch, { jobId: jobId(batch.id) }), 5000)
      },
      fetch: guarded.fetch,
      log,
      onLanded,
    },
    { maxRecords: c.backfillMaxRecords, concurrency: c.backfillConcurrency, maxWaiting: c.backfillQueue, timeoutMs: c.backfillTimeoutMs },
  ).start()
  return {
    backfill,
    async close() {
      await backfill.stop()
      await storeQueue.close()
      guarded.close()
    },
  }
}

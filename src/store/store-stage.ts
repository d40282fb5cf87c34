import { UnrecoverableError, type Job, type Worker } from 'bullmq'
import type { Logger } from '../logger.ts'
import type { BatchWriter, WriteResult } from './writer.ts'
import type { StoreBatch } from '../contracts/jobs.ts'

/** Store jobs applied in one SQLite transaction at most (when that many are already waiting). */
export const STORE_GROUP = { jobs: 32, events: 8000 }

/** Whether a store job carries what the writer reads (anything else is failed for good, never retried). */
export function wellFormedStoreBatch(d: StoreBatch | undefined): boolean {
  return (
    !!d &&
    Array.isArray(d.events) &&
    Array.isArray(d.scores) &&
    (d.postScores === undefined || (Array.isArray(d.postScores.keys) && Array.isArray(d.postScores.rows)))
  )
}

/**
 * Stores one taken `store` job, and with it the jobs already waiting, up to
 * STORE_GROUP, in one transaction: one commit for all of them. Each job is
 * still its own savepoint, so a job that fails is retried (or, when
 * malformed, failed for good and kept) alone; the others are stored. The
 * joined jobs are finished here; the taken one by what this returns or
 * throws (the worker's processor returns it).
 */
export async function storeJobGroup(
  worker: Pick<Worker<StoreBatch>, 'getNextJob'>,
  writer: Pick<BatchWriter, 'writeGroup' | 'settle'>,
  log: Logger,
  job: Job<StoreBatch>,
  token?: string,
): Promise<WriteResult> {
  if (!wellFormedStoreBatch(job.data)) {
    if (job.id) writer.settle(job.id)
    throw new UnrecoverableError('malformed store job')
  }
  const more: Job<StoreBatch>[] = []
  let events = job.data.events.length
  // @NOTE never waits: only jobs already in the queue join (they are locked with this job's token)
  while (token && more.length + 1 < STORE_GROUP.jobs && events < STORE_GROUP.events) {
    const next = await worker.getNextJob(token, { block: false })
    if (!next) break
    if (!wellFormedStoreBatch(next.data)) {
      if (next.id) writer.settle(next.id)
      await next
        .moveToFailed(new UnrecoverableError('malformed store job'), token)
        .catch((err) => log.warn({ job: next.id, err: err.message }, 'cannot fail job'))
      continue
    }
    more.push(next)
    events += next.data.events.length
  }
  let results: ReturnType<BatchWriter['writeGroup']>
  try {
    results = writer.writeGroup([job.data, ...more.map((j) => j.data)])
  } catch (err) {
    // the transaction as a whole failed: every job goes back for a retry
    await Promise.all(more.map((j) => j.moveToFailed(err as Error, token!).catch(() => {})))
    throw err
  }
  await Promise.all(
    more.map((j, i) => {
      const r = results[i + 1]
      if (!r.ok) log.warn({ worker: 'store', job: j.id, attempts: j.attemptsMade, err: r.error.message }, 'job failed')
      // @NOTE if Redis does not hear of it, the job's lock expires and it is stored again later (writes are idempotent)
      return (r.ok ? j.moveToCompleted(r.result, token!, false) : j.moveToFailed(r.error, token!)).catch((err) =>
        log.warn({ job: j.id, err: (err as Error).message }, 'cannot finish store job'),
      )
    }),
  )
  const first = results[0]
  if (!first.ok) throw first.error
  return first.result
}

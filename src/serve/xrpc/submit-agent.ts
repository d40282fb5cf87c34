import type { Hono } from 'hono'
import { RateBudget } from '../../util/rate-budget.ts'
import { QueueFullError, WorkQueue } from '../../util/work-queue.ts'
import { XrpcError } from '../errors.ts'
import { xrpcMethod } from '../middleware.ts'
import type { AppDeps } from './deps.ts'

const NSID = 'app.skysift.agent.submitAgent'

const MAX_PENDING_PER_AUTHOR = 5

/** Defaults of SKYSIFT_SUBMIT_PER_AUTHOR_H and SKYSIFT_SUBMIT_PER_H. */
export const SUBMIT_DEFAULTS = { perAuthorPerHour: 5, perHour: 30 }

/** app.skysift.agent.submitAgent: an author's agent source, checked in a sandbox and kept for review. */
export function submitAgent(app: Hono, d: AppDeps): void {
  const submitLimits = d.submitLimits ?? SUBMIT_DEFAULTS
  const submissions = d.submitBudget ?? new RateBudget({ perKey: submitLimits.perAuthorPerHour, total: submitLimits.perHour, windowMs: 3_600_000 })
  // @NOTE a submission loads the agent in a sandbox worker thread to read its metadata: one at a time, a few waiting
  const submitting = new WorkQueue(2)
  // a body that is not JSON is checked as null: the lexicon says what is missing
  const spec = {
    nsid: NSID,
    auth: 'required',
    input: { maxKiB: 300, lexicons: d.lexicons, notJson: 'check' },
    busy: 'too many submissions are being checked; try again in a moment',
  } as const
  app.post(`/xrpc/${NSID}`, xrpcMethod(d, spec), async (c) => {
    const who = c.var.viewer
    const pending = d.agents.store.list().filter((a) => a.submittedBy === who && a.status === 'pending')
    if (pending.length >= MAX_PENDING_PER_AUTHOR)
      throw new XrpcError(429, 'TooManyPending', `at most ${MAX_PENDING_PER_AUTHOR} agents may wait for review per author`)
    const spent = await submissions.take(who)
    if (spent) {
      d.log.info({ author: who, scope: spent.scope }, 'agent submission refused: budget spent')
      c.header('retry-after', String(spent.retryAfterS))
      const msg =
        spent.scope === 'key'
          ? `at most ${submitLimits.perAuthorPerHour} submissions per author per hour`
          : `at most ${submitLimits.perHour} submissions per hour are taken`
      throw new XrpcError(429, 'RateLimitExceeded', `${msg}; try again in ${spent.retryAfterS} s`)
    }
    let rec
    try {
      rec = await submitting.run(() => d.agents.store.submitSandboxed((c.var.input as { source: string }).source, who))
    } catch (err) {
      // @NOTE whatever else goes wrong loading the source in the sandbox, the agent is what is wrong
      if (err instanceof QueueFullError) throw err
      throw new XrpcError(400, 'InvalidAgent', (err as Error).message)
    }
    d.log.info({ agent: rec.id, author: who }, 'agent submitted for review')
    return c.json({ id: rec.id, version: rec.meta.version, status: rec.status })
  })
}

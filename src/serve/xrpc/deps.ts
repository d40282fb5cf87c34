import type { Lexicons } from '@atproto/lexicon'
import type { Context, Hono } from 'hono'
import type { Config } from '../../config.ts'
import type { Logger } from '../../logger.ts'
import type { OpsRoutes } from '../admin/serve-ops.ts'
import type { IngestHealth } from '../../status/status.ts'
import type { FeedService } from '../../feed/service.ts'
import type { UsageCounter } from '../../feed/usage.ts'
import type { AdminAgentDeps } from '../admin/agents.ts'
import type { Authenticator } from '../auth.ts'
import type { RateBudget } from '../../util/rate-budget.ts'

export interface HealthCheck {
  name: string
  check(): Promise<void> | void
}

/** What the XRPC app is built from; each method takes what it needs. */
export interface AppDeps {
  config: Pick<Config, 'serviceDid' | 'publicUrl' | 'publisherDid'>
  feeds: FeedService
  auth: Authenticator
  lexicons: Lexicons
  log: Logger
  version: string
  health: HealthCheck[]
  /** how the ingest is doing, for the health check (it does not decide `ok`) */
  ingest?: () => Promise<IngestHealth>
  agents: AdminAgentDeps & { usage: UsageCounter }
  adminToken?: string
  /** operations routes (/metrics, /admin pages, request timing), installed before every other route */
  ops?: OpsRoutes
  /** subscriber web pages (src/serve/web), mounted at the root */
  web?: Hono
  /** the page a browser gets for an unknown path outside /xrpc */
  notFoundPage?: (c: Context) => Response | Promise<Response>
  /** agent submissions per author and in all per hour (attempts, whatever their outcome) */
  submitLimits?: { perAuthorPerHour: number; perHour: number }
  /** the budget submissions are counted against (shared by serving processes); without it, one of this process's own */
  submitBudget?: { take(key: string): ReturnType<RateBudget['take']> | Promise<ReturnType<RateBudget['take']>> }
}

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'

/** Where the shipped example feeds file lives. */
export const EXAMPLE_FEEDS_FILE = fileURLToPath(new URL('../feeds.example.json', import.meta.url))

/** Live Jetstream endpoint used when SKYSIFT_SOURCE is not set. */
export const DEFAULT_SOURCE = 'jetstream:wss://jetstream2.us-east.bsky.network/subscribe'

export type SourceSpec = { kind: 'jetstream'; url: string } | { kind: 'firehose'; url: string } | { kind: 'replay'; path: string; pace: 'full' | 'recorded' }

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const source = z.string().transform((v, ctx): SourceSpec => {
  const i = v.indexOf(':')
  const kind = v.slice(0, i)
  const rest = v.slice(i + 1)
  if (kind === 'jetstream' || kind === 'firehose') {
    try {
      const u = new URL(rest)
      if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error()
    } catch {
      ctx.addIssue({ code: 'custom', message: `${kind} needs a ws:// or wss:// URL` })
      return z.NEVER
    }
    return { kind, url: rest }
  }
  if (kind === 'replay') {
    if (!rest) {
      ctx.addIssue({ code: 'custom', message: 'replay needs a file path' })
      return z.NEVER
    }
    const [file, pace] = rest.split('#')
    if (pace && pace !== 'full' && pace !== 'recorded') {
      ctx.addIssue({ code: 'custom', message: 'replay pace is #full or #recorded' })
      return z.NEVER
    }
    return { kind, path: path.resolve(file), pace: pace === 'recorded' ? 'recorded' : 'full' }
  }
  ctx.addIssue({
    code: 'custom',
    message: 'expected jetstream:<ws url>, firehose:<ws url> or replay:<file>',
  })
  return z.NEVER
})

const schema = z.object({
  SKYSIFT_PORT: int(0, 65535).default(3000),
  SKYSIFT_HOST: z.string().min(1).default('0.0.0.0'),
  SKYSIFT_DB_PATH: z.string().min(1).default('./data/skysift.db'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected redis://host:port')
    .default('redis://127.0.0.1:6379'),
  SKYSIFT_QUEUE_PREFIX: z
    .string()
    .min(1)
    // @NOTE one hash tag ({…}) is allowed: on a Redis Cluster every key of a queue (BullMQ's scripts take several) and
    // every key Skysift keeps must hash to one slot, which a prefix such as `{skysift}` does
    .regex(/^[A-Za-z0-9_-]*(\{[A-Za-z0-9_-]+\})?[A-Za-z0-9_-]*$/, 'letters, digits, _ and -, with at most one {hash tag}')
    .default('skysift'),
  SKYSIFT_SOURCE: source.prefault(DEFAULT_SOURCE),
  SKYSIFT_JETSTREAM_DICTIONARY: z
    .string()
    .transform((v) => path.resolve(v))
    .refine((f) => fs.existsSync(f) && fs.statSync(f).isFile(), 'no such file')
    .optional(),
  SKYSIFT_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  SKYSIFT_SERVICE_DID: z
    .string()
    .regex(/^did:(web|plc):[A-Za-z0-9._:%-]+$/, 'expected a did:web or did:plc')
    .optional(),
  SKYSIFT_PUBLISHER_DID: z
    .string()
    .regex(/^did:(web|plc):[A-Za-z0-9._:%-]+$/, 'expected a DID')
    .optional(),
  SKYSIFT_PUBLISHER_HANDLE: z.string().trim().optional(),
  SKYSIFT_PUBLISHER_PASSWORD: z.string().optional(),
  SKYSIFT_PUBLISHER_SERVICE: z.string().min(1).optional(),
  SKYSIFT_FEEDS_FILE: z.string().min(1).default(EXAMPLE_FEEDS_FILE),
  SKYSIFT_PLC_URL: z.url({ protocol: /^https?$/ }).default('https://plc.directory'),
  SKYSIFT_ALLOW_INSECURE_HTTP: bool.default(false),
  SKYSIFT_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  SKYSIFT_SCORE_WORKERS: int(0, 64).default(1),
  SKYSIFT_SERVE_PROCESSES: z.union([z.literal('auto'), int(1, 256)]).optional(),
  SKYSIFT_EDGE_PUBLISH: bool.default(false),
  SKYSIFT_VERIFY_THREAD: z.union([z.literal('auto'), bool]).default('auto'),
  SKYSIFT_BATCH_SIZE: int(1, 5000).default(2000),
  SKYSIFT_QUEUE_HIGH_WATER: int(1, 1_000_000).default(200),
  SKYSIFT_CACHE_TTL_S: int(1, 86_400).default(30),
  SKYSIFT_CACHE_SIZE: int(10, 10_000).default(1000),
  SKYSIFT_SNAPSHOT_TTL_S: int(60, 7 * 86_400).default(3600),
  SKYSIFT_START_REDIS: z.enum(['auto', 'never']).default('auto'),
  SKYSIFT_AGENTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .optional(),
  SKYSIFT_ADMIN_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  SKYSIFT_METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  SKYSIFT_RETENTION_MARGIN_H: int(0, 24 * 30).default(6),
  SKYSIFT_ALLOW_PRIVATE_AGENTS: bool.default(false),
  SKYSIFT_OAUTH_HANDLE_RESOLVER: z.url({ protocol: /^https?$/ }).optional(),
  SKYSIFT_COOKIE_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  SKYSIFT_TOKEN_MAX_LIFETIME_S: int(60, 86_400).default(3600),
  SKYSIFT_LABELERS_PER_MIX: int(0, 100).default(10),
  SKYSIFT_LABELERS_MAX: int(1, 10_000).default(50),
  SKYSIFT_LABELER_CONCURRENCY: int(1, 64).default(4),
  SKYSIFT_LABELER_REQUESTS_PER_MIN: int(1, 100_000).default(60),
  SKYSIFT_BACKFILL_MAX_RECORDS: int(0, 100_000).default(1000),
  SKYSIFT_BACKFILL_CONCURRENCY: int(0, 32).default(2),
  SKYSIFT_BACKFILL_QUEUE: int(0, 1_000_000).default(1000),
  SKYSIFT_BACKFILL_TIMEOUT_S: int(1, 600).default(30),
  SKYSIFT_READER_RETENTION_DAYS: int(1, 3650).default(30),
  SKYSIFT_AGENT_INSTANCES: int(64, 100_000).default(1000),
  SKYSIFT_PREVIEW_CANDIDATES: int(100, 100_000).default(2000),
  SKYSIFT_PREVIEW_QUEUE: int(1, 1000).default(8),
  SKYSIFT_SUBMIT_PER_AUTHOR_H: int(1, 1000).default(5),
  SKYSIFT_SUBMIT_PER_H: int(1, 100_000).default(30),
  SKYSIFT_FEEDBACK_PER_FEED: int(10, 1_000_000).default(2000),
  SKYSIFT_CURSOR_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  SKYSIFT_PRIMARY_URL: z.url({ protocol: /^https?$/ }).optional(),
})

export interface Config {
  port: number
  host: string
  dbPath: string
  redisUrl: string
  queuePrefix: string
  source: SourceSpec
  /** the zstd dictionary file a Jetstream source decompresses with (then it asks for compressed messages) */
  jetstreamDictionary: string | undefined
  publicUrl: string
  serviceDid: string
  publisherDid: string | undefined
  /** the publisher account's handle, for `skysift publish` (asked on a terminal when unset) */
  publisherHandle: string | undefined
  /** the publisher account's app password, for `skysift publish` (asked on a terminal when unset) */
  publisherPassword: string | undefined
  /** the PDS `skysift publish` logs in at (https://bsky.social when unset; --service overrides it) */
  publisherService: string | undefined
  feedsFile: string
  plcUrl: string
  allowInsecureHttp: boolean
  logLevel: string
  scoreWorkers: number
  /** HTTP serving processes on the one port (SKYSIFT_SERVE_PROCESSES resolved: `auto` is one per core) */
  serveProcesses: number
  /** serving processes publish to Redis what edge nodes (`skysift edge`) serve from, and drain what they send back */
  edgePublish: boolean
  /** secp256k1 token signatures checked on a thread of each serving process (SKYSIFT_VERIFY_THREAD resolved: `auto` is on with 2 cores or more) */
  verifyThread: boolean
  batchSize: number
  queueHighWater: number
  cacheTtlMs: number
  cacheSize: number
  snapshotTtlMs: number
  startRedis: 'auto' | 'never'
  /** installed agents: npm package names or paths of modules */
  installedAgents: string[]
  /** bearer token for the admin API; admin routes are off without it */
  adminToken: string | undefined
  /** bearer token /metrics asks for; open without it */
  metricsToken: string | undefined
  /** posts are kept for the longest feed window plus this margin */
  retentionMarginMs: number
  /** let remote agents live on loopback or private addresses (local testing only) */
  allowPrivateAgents: boolean
  /** a service answering com.atproto.identity.resolveHandle for web sign-in (default: DNS and https well-known) */
  oauthHandleResolver: string | undefined
  /** signs web cookies; generated once and kept in SQLite when unset */
  cookieSecret: string | undefined
  /** the longest a service-auth token may live (exp − iat) */
  tokenMaxLifetimeS: number
  /** distinct labelers one mix may name */
  labelersPerMix: number
  /** distinct labelers this server fetches labels from at once */
  labelersMax: number
  /** queryLabels requests in flight at once, over all labelers */
  labelerConcurrency: number
  /** requests one labeler host gets per minute at most */
  labelerRequestsPerMin: number
  /** records read per collection when a reader's graph is backfilled from their repo (likes: the newest) */
  backfillMaxRecords: number
  /** readers' backfills running at once per serving process (0: no backfill) */
  backfillConcurrency: number
  /** readers waiting for a backfill at most (more are left to the next look at the pending ones) */
  backfillQueue: number
  /** one reader's backfill is given up (and retried later) after this */
  backfillTimeoutMs: number
  /** a reader not seen for this long is forgotten, with their graph */
  readerRetentionMs: number
  /** agent instances (an agent with one set of options) a process keeps; the least recently used go first */
  agentInstances: number
  /** the newest candidates a preview ranks */
  previewCandidates: number
  /** previews waiting their turn (they run one at a time); more are refused with 429 */
  previewQueue: number
  /** agent submissions one author may attempt per hour */
  submitPerAuthorPerHour: number
  /** agent submissions everyone together may attempt per hour */
  submitPerHour: number
  /** interactions kept per reader and feed; the oldest go first */
  feedbackPerFeed: number
  /** signs paging cursors; generated once and kept in SQLite when unset */
  cursorSecret: string | undefined
  /** where an edge node (`skysift edge`) sends the requests it does not answer itself; unset: those get a 503 */
  primaryUrl: string | undefined
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** did:web for a public URL: the host, with a port encoded as %3A. */
export function didWebFor(publicUrl: string): string {
  const u = new URL(publicUrl)
  return `did:web:${u.hostname}${u.port ? `%3A${u.port}` : ''}`
}

/**
 * Reads every setting from `env` (empty strings count as unset), applies
 * `overrides`, and returns a frozen config or throws one ConfigError naming
 * every bad variable.
 */
export function readConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Readonly<Config> {
  const raw: Record<string, string> = {}
  for (const key of Object.keys(schema.shape)) {
    const v = env[key]
    if (v !== undefined && v !== '') raw[key] = v
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (i) => `${i.path.join('.')}: ${i.message}${raw[String(i.path[0])] !== undefined ? ` (got ${JSON.stringify(raw[String(i.path[0])])})` : ''}`,
      ),
    )
  }
  const e = parsed.data
  const port = overrides.port ?? e.SKYSIFT_PORT
  const publicUrl = (overrides.publicUrl ?? e.SKYSIFT_PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, '')
  const config: Config = {
    port,
    host: e.SKYSIFT_HOST,
    dbPath: path.resolve(e.SKYSIFT_DB_PATH),
    redisUrl: e.REDIS_URL,
    queuePrefix: e.SKYSIFT_QUEUE_PREFIX,
    source: e.SKYSIFT_SOURCE,
    jetstreamDictionary: e.SKYSIFT_JETSTREAM_DICTIONARY,
    publicUrl,
    serviceDid: e.SKYSIFT_SERVICE_DID ?? didWebFor(publicUrl),
    publisherDid: e.SKYSIFT_PUBLISHER_DID,
    publisherHandle: e.SKYSIFT_PUBLISHER_HANDLE || undefined,
    publisherPassword: e.SKYSIFT_PUBLISHER_PASSWORD,
    publisherService: e.SKYSIFT_PUBLISHER_SERVICE,
    feedsFile: path.resolve(e.SKYSIFT_FEEDS_FILE),
    plcUrl: e.SKYSIFT_PLC_URL.replace(/\/+$/, ''),
    allowInsecureHttp: e.SKYSIFT_ALLOW_INSECURE_HTTP,
    logLevel: e.SKYSIFT_LOG_LEVEL,
    scoreWorkers: e.SKYSIFT_SCORE_WORKERS,
    serveProcesses: serveProcessCount(e.SKYSIFT_SERVE_PROCESSES),
    edgePublish: e.SKYSIFT_EDGE_PUBLISH,
    verifyThread: e.SKYSIFT_VERIFY_THREAD === 'auto' ? os.availableParallelism() > 1 : e.SKYSIFT_VERIFY_THREAD,
    batchSize: e.SKYSIFT_BATCH_SIZE,
    queueHighWater: e.SKYSIFT_QUEUE_HIGH_WATER,
    cacheTtlMs: e.SKYSIFT_CACHE_TTL_S * 1000,
    cacheSize: e.SKYSIFT_CACHE_SIZE,
    snapshotTtlMs: e.SKYSIFT_SNAPSHOT_TTL_S * 1000,
    startRedis: e.SKYSIFT_START_REDIS,
    installedAgents: e.SKYSIFT_AGENTS ?? [],
    adminToken: e.SKYSIFT_ADMIN_TOKEN,
    metricsToken: e.SKYSIFT_METRICS_TOKEN,
    retentionMarginMs: e.SKYSIFT_RETENTION_MARGIN_H * 3_600_000,
    allowPrivateAgents: e.SKYSIFT_ALLOW_PRIVATE_AGENTS,
    oauthHandleResolver: e.SKYSIFT_OAUTH_HANDLE_RESOLVER,
    cookieSecret: e.SKYSIFT_COOKIE_SECRET,
    tokenMaxLifetimeS: e.SKYSIFT_TOKEN_MAX_LIFETIME_S,
    labelersPerMix: e.SKYSIFT_LABELERS_PER_MIX,
    labelersMax: e.SKYSIFT_LABELERS_MAX,
    labelerConcurrency: e.SKYSIFT_LABELER_CONCURRENCY,
    labelerRequestsPerMin: e.SKYSIFT_LABELER_REQUESTS_PER_MIN,
    backfillMaxRecords: e.SKYSIFT_BACKFILL_MAX_RECORDS,
    backfillConcurrency: e.SKYSIFT_BACKFILL_CONCURRENCY,
    backfillQueue: e.SKYSIFT_BACKFILL_QUEUE,
    backfillTimeoutMs: e.SKYSIFT_BACKFILL_TIMEOUT_S * 1000,
    readerRetentionMs: e.SKYSIFT_READER_RETENTION_DAYS * 86_400_000,
    agentInstances: e.SKYSIFT_AGENT_INSTANCES,
    previewCandidates: e.SKYSIFT_PREVIEW_CANDIDATES,
    previewQueue: e.SKYSIFT_PREVIEW_QUEUE,
    submitPerAuthorPerHour: e.SKYSIFT_SUBMIT_PER_AUTHOR_H,
    submitPerHour: e.SKYSIFT_SUBMIT_PER_H,
    feedbackPerFeed: e.SKYSIFT_FEEDBACK_PER_FEED,
    cursorSecret: e.SKYSIFT_CURSOR_SECRET,
    primaryUrl: e.SKYSIFT_PRIMARY_URL?.replace(/\/+$/, ''),
    ...overrides,
  }
  if (overrides.publicUrl && !overrides.serviceDid && !e.SKYSIFT_SERVICE_DID) {
    config.serviceDid = didWebFor(publicUrl)
  }
  return Object.freeze(config)
}

/** Serving processes on a machine with `cores` cores by default: one on two cores or fewer, else half of them (at most 8). */
export function defaultServeProcesses(cores = os.availableParallelism()): number {
  // @NOTE measured on two cores (docs/scaling.md): a second serving process competes with the store and score
  // workers for the same cores; from four cores on, half of them serve and the rest is left to the pipeline
  return cores <= 2 ? 1 : Math.min(8, Math.floor(cores / 2))
}

/** SKYSIFT_SERVE_PROCESSES as a number of processes: a count, `auto` (one per core) or unset (the default). */
export function serveProcessCount(setting: number | 'auto' | undefined, cores = os.availableParallelism()): number {
  if (setting === 'auto') return Math.max(1, cores)
  return setting ?? defaultServeProcesses(cores)
}

import fs from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { Hono } from 'hono'
import { createAdaptorServer, type ServerType } from '@hono/node-server'
import { Worker, UnrecoverableError, type Job, type Queue } from 'bullmq'
import type { AppContext } from './context.ts'
import { FirehoseSource } from './ingest/firehose-source.ts'
import { Ingester } from './ingest/ingester.ts'
import { JetstreamSource } from './ingest/jetstream-source.ts'
import { ReplaySource } from './ingest/replay-source.ts'
import type { Source } from './ingest/source.ts'
import { producerQueue, redisOptions } from './contracts/queues.ts'
import { QUEUE, jobId, type EventsJob, type RefreshJob } from './contracts/jobs.ts'
import { AgentStore } from './score/agent-registry.ts'
import { AgentRecords } from './store/agents.ts'
import { InstanceRegistry } from './score/instance-registry.ts'
import { scoreBatch } from './score/score-stage.ts'
import { createApp } from './serve/xrpc/index.ts'
import { withServedBy } from './serve/processes.ts'
import { SharedRateBudget } from './serve/shared-budget.ts'
import { Authenticator, createIdResolver } from './serve/auth.ts'
import { loadSkysiftLexicons } from './serve/lexicons.ts'
import { HandleDirectory, identityLookups } from './serve/web/handles.ts'
import { createWeb } from './serve/web/index.ts'
import { FollowGraph } from './store/follow-graph.ts'
import { InteractionStore } from './store/interactions.ts'
import { MixStore } from './store/mixes.ts'
import { PostReader } from './store/posts.ts'
import { WebSessionStore } from './store/web-sessions.ts'
import { startCheckpointer } from './store/checkpointer.ts'
import { storeJobGroup } from './store/store-stage.ts'
import { storedSecret } from './store/secrets.ts'
import { UsageRepository } from './store/usage.ts'
import { BatchWriter, scoreEntries } from './store/writer.ts'
import type { StoreBatch } from './contracts/jobs.ts'
import { withTimeout } from './util/timeout.ts'
import { countEventKinds } from './store/event-kinds.ts'
import { retentionPolicy, startRetention } from './store/retention.ts'
import { createServeOps } from './serve/admin/serve-ops.ts'
import { startAgentSync, type AgentSyncPart } from './feed/agent-sync.ts'
import { refreshList } from './feed/refresh-job.ts'
import { openLists } from './feed/open-lists.ts'
import { EdgePublisher, type EdgePublisherDeps } from './feed/edge-publisher.ts'
import { FeedService } from './feed/service.ts'
import { listKey } from './feed/skeleton.ts'
import { startReaderBackfill } from './feed/start-reader-backfill.ts'
import { UsageCounter } from './feed/usage.ts'
import { ReaderFilter } from './store/reader-filter.ts'
import { ChangeLogRepository } from './store/change-log.ts'
import { startReaderRetention } from './store/reader-retention.ts'
import { attachIngest, ingestOf } from './status/report.ts'
import { ingestHealthReader } from './status/status.ts'

export type Role = 'ingest' | 'score' | 'store' | 'refresh' | 'serve'

/** Something running that can be stopped; stopping waits for in-flight work. */
export interface Running {
  name: string
  stop(): Promise<void>
}

const workerConnection = (ctx: AppContext) => ({ ...redisOptions(ctx.config.redisUrl), maxRetriesPerRequest: null })

function watchWorker(ctx: AppContext, w: Worker, name: string): Worker {
  // @NOTE an unhandled 'error' event would crash the process; workers retry Redis forever on their own
  w.on('error', (err) => ctx.log.warn({ worker: name, err: err.message }, 'worker error'))
  w.on('failed', (job, err) => ctx.log.warn({ worker: name, job: job?.id, attempts: job?.attemptsMade, err: err.message }, 'job failed'))
  return w
}

export function createSource(ctx: AppContext): Source {
  const s = ctx.config.source
  const log = ctx.log.child({ sub: 'ingest' })
  switch (s.kind) {
    case 'jetstream':
      return new JetstreamSource(s.url, log, { dictionary: ctx.config.jetstreamDictionary ? fs.readFileSync(ctx.config.jetstreamDictionary) : null })
    case 'firehose':
      return new FirehoseSource(s.url, createIdResolver(ctx.config.plcUrl, ctx.config.allowInsecureHttp), log)
    case 'replay':
      return new ReplaySource(s.path, s.pace)
  }
}

const agentSyncs = new WeakMap<AppContext, AgentSyncPart>()

/**
 * This process's agent sync (feed/agent-sync.ts): next to the SQLite file
 * (`store`) run-time agents are read from the agents table and published to
 * Redis; elsewhere (score workers, `redis`) they are read from Redis. One per
 * process: later callers get the same one.
 */
export function agentSync(ctx: AppContext, source: 'store' | 'redis', intervalMs = 5000): AgentSyncPart {
  const have = agentSyncs.get(ctx)
  if (have) return have
  const store =
    source === 'store' ? new AgentStore(new AgentRecords(ctx.db.sqlite), (id) => ['builtin', 'installed'].includes(ctx.host.kindOf(id) ?? '')) : null
  const sync = startAgentSync({
    host: ctx.host,
    redis: ctx.redis(),
    queuePrefix: ctx.config.queuePrefix,
    store,
    allowPrivateAgents: ctx.config.allowPrivateAgents,
    log: ctx.log.child({ sub: 'agents' }),
    intervalMs,
  })
  const part: AgentSyncPart = {
    ...sync,
    async stop() {
      await sync.stop()
      agentSyncs.delete(ctx)
    },
  }
  agentSyncs.set(ctx, part)
  return part
}

/** Ingest: source → `events` queue, cursor in SQLite. */
export function startIngest(ctx: AppContext, source: Source = createSource(ctx)): Running & { ingester: Ingester; done: Promise<void> } {
  const queue = producerQueue<EventsJob>(QUEUE.events, ctx.config.redisUrl, ctx.config.queuePrefix)
  queue.on('error', (err) => ctx.log.debug({ err: err.message }, 'events queue error'))
  // the store queue is only counted (its waiting jobs hold the ingest back too), never added to
  const storeQueue = producerQueue<StoreBatch>(QUEUE.store, ctx.config.redisUrl, ctx.config.queuePrefix)
  storeQueue.on('error', (err) => ctx.log.debug({ err: err.message }, 'store queue error'))
  const ingester = new Ingester(source, queue, ctx.db.sqlite, ctx.log.child({ sub: 'ingest' }), {
    batchSize: ctx.config.batchSize,
    highWater: ctx.config.queueHighWater,
    downstream: [storeQueue],
    epoch: { redis: ctx.redis(), prefix: ctx.config.queuePrefix },
    // @NOTE Redis emptied after the last batch was queued (a replay read to the end, a quiet source) is noticed too
    watchMs: 250,
  })
  attachIngest(ctx, () => ({ stats: ingester.stats, source: ingester.source.name, state: ingester.source.status }))
  const done = ingester.start()
  return {
    name: 'ingest',
    ingester,
    done,
    async stop() {
      await ingester.stop()
      await Promise.all([queue.close(), storeQueue.close()])
    },
  }
}

/** Score workers: `events` → every static agent → `store`. Stateless; run as many as you like. */
export function startScore(ctx: AppContext, concurrency = 2): Running & { worker: Worker } {
  const log = ctx.log.child({ sub: 'score' })
  const storeQueue = producerQueue<StoreBatch>(QUEUE.store, ctx.config.redisUrl, ctx.config.queuePrefix)
  storeQueue.on('error', (err) => log.debug({ err: err.message }, 'store queue error'))
  const registry = new InstanceRegistry(ctx.redis(), ctx.config.queuePrefix, ctx.host, log, undefined, ctx.config.agentInstances)
  const agents = agentSync(ctx, 'redis')
  const worker = new Worker<EventsJob>(
    QUEUE.events,
    async (job: Job<EventsJob>) => {
      if (!job.data || !Array.isArray(job.data.events) || typeof job.data.id !== 'string') {
        throw new UnrecoverableError('malformed events job')
      }
      await agents.ready
      const instances = await registry.active()
      const batch = await scoreBatch(ctx.host, instances, job.data)
      await storeQueue.add('batch', batch, { jobId: job.data.id })
      return { events: batch.events.length, scores: [...scoreEntries(batch)].filter(([, , s]) => s !== null).length }
    },
    { connection: workerConnection(ctx), prefix: ctx.config.queuePrefix, concurrency, maxStalledCount: MAX_STALLED, ...JOB_LOCK },
  )
  watchWorker(ctx, worker, 'score')
  // default mixes' static agents are pre-scored from the first post on (re-said now and then: Redis may have restarted empty)
  const defaults = ctx.feeds.flatMap((f) => f.defaults.entries.map((e) => e.inst))
  const announce = () => registry.register(defaults).catch((err) => log.debug({ err: err.message }, 'cannot register default agents yet'))
  void announce()
  const announcer = setInterval(announce, 30_000)
  announcer.unref()
  return {
    name: 'score',
    worker,
    async stop() {
      clearInterval(announcer)
      await agents.stop()
      await worker.close()
      await storeQueue.close()
    },
  }
}

/**
 * How often a job may be found stalled (its worker died holding it) before BullMQ fails it for good; BullMQ's
 * default is 1. A job of events that fails for good is lost, and workers killed again and again (a crash loop,
 * an OOM killer) would otherwise reach that.
 */
const MAX_STALLED = 20

/**
 * How long a worker's hold on a job lasts unless renewed (every half of it), and how often workers look for jobs
 * whose hold ran out: a job whose worker died comes back within about 15 s instead of BullMQ's 30 + 30. Nothing
 * depends on it but how soon: the writer applies a batch that comes back late as if it had come in order.
 * @NOTE a renewal needs the event loop: a store transaction or a scoring chunk holds it for well under a second
 */
const JOB_LOCK = { lockDuration: 10_000, stalledInterval: 5_000 }

/**
 * The one SQLite writer: `store` → posts, engagement, scores; deletes honoured.
 * Jobs already waiting when one is taken join it (store/store-stage.ts).
 */
export function startStore(ctx: AppContext): Running & { worker: Worker; writer: BatchWriter } {
  const log = ctx.log.child({ sub: 'store' })
  const writer = countEventKinds(ctx.db.sqlite, new BatchWriter(ctx.db.sqlite))
  const retention = startRetention(
    ctx.db.sqlite,
    log.child({ part: 'retention' }),
    retentionPolicy(ctx.feeds, { marginMs: ctx.config.retentionMarginMs, snapshotTtlMs: ctx.config.snapshotTtlMs }),
  )
  const checkpointer = startCheckpointer(ctx.db.sqlite, log)
  const readerRetention = startReaderRetention(ctx.db.sqlite, log.child({ part: 'reader-retention' }), {
    readerRetentionMs: ctx.config.readerRetentionMs,
    maxLikes: Math.max(1, ctx.config.backfillMaxRecords),
  })
  const worker: Worker<StoreBatch> = new Worker<StoreBatch>(
    QUEUE.store,
    (job: Job<StoreBatch>, token?: string) => storeJobGroup(worker, writer, log, job, token),
    { connection: workerConnection(ctx), prefix: ctx.config.queuePrefix, concurrency: 1, maxStalledCount: MAX_STALLED, ...JOB_LOCK },
  )
  watchWorker(ctx, worker, 'store')
  const { pages } = openLists(ctx.db.sqlite, ctx.host, log, ctx.config)
  const pruner = setInterval(() => {
    try {
      const n = pages.prune()
      if (n) log.debug({ snapshots: n }, 'pruned old snapshots')
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'prune failed')
    }
  }, 60_000)
  pruner.unref()
  return {
    name: 'store',
    worker,
    writer,
    async stop() {
      clearInterval(pruner)
      readerRetention.stop()
      await retention.stop()
      await worker.close()
      await checkpointer?.stop()
    },
  }
}

/** Refresh worker: rebuilds a (feed, mix) list when a reader finds it stale. */
export function startRefresh(ctx: AppContext): Running & { worker: Worker } {
  const log = ctx.log.child({ sub: 'refresh' })
  void ctx.labels
  const agents = agentSync(ctx, 'store')
  const { pages, lists } = openLists(ctx.db.sqlite, ctx.host, log, ctx.config)
  const graph = new FollowGraph(ctx.db.sqlite)
  const deps = { feeds: ctx.feeds, host: ctx.host, pages, lists, graph, cacheTtlMs: ctx.config.cacheTtlMs }
  const worker = new Worker<RefreshJob>(
    QUEUE.refresh,
    async (job: Job<RefreshJob>) => {
      await agents.ready
      return refreshList(deps, job.data)
    },
    { connection: workerConnection(ctx), prefix: ctx.config.queuePrefix, concurrency: 1 },
  )
  watchWorker(ctx, worker, 'refresh')
  return {
    name: 'refresh',
    worker,
    async stop() {
      await worker.close()
      await agents.stop()
    },
  }
}

/**
 * The Hono app with its feed service, wired to SQLite and Redis (no port). `leader`: the first serving process
 * (the others are SKYSIFT_SERVE_PROCESSES peers), which alone does the once-per-primary parts of edge publishing;
 * `edgeTimings`: shorter intervals of edge publishing, for tests.
 */
export function createServeApp(
  ctx: AppContext,
  opts: { leader?: boolean; edgeTimings?: EdgePublisherDeps['timings'] } = {},
): { app: Hono; feeds: FeedService; edge: EdgePublisher | null; close: () => Promise<void> } {
  const log = ctx.log.child({ sub: 'serve' })
  const refreshQueue: Queue<RefreshJob> = producerQueue<RefreshJob>(QUEUE.refresh, ctx.config.redisUrl, ctx.config.queuePrefix)
  refreshQueue.on('error', (err) => log.debug({ err: err.message }, 'refresh queue error'))
  const redis = ctx.redis()
  const registry = new InstanceRegistry(redis, ctx.config.queuePrefix, ctx.host, log, undefined, ctx.config.agentInstances)
  const agents = agentSync(ctx, 'store')
  void ctx.labels
  const usage = new UsageCounter(new UsageRepository(ctx.db.sqlite), ctx.feeds)
  const flusher = setInterval(() => {
    try {
      usage.flush()
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'usage flush failed')
    }
  }, 10_000)
  flusher.unref()
  const ops = createServeOps(ctx)
  const readers = startReaderBackfill(ctx, log.child({ part: 'backfill' }), (did) => feeds.rebuildFor(did))
  const cursorSecret = ctx.config.cursorSecret ?? storedSecret(ctx.db.sqlite, 'cursor')
  const lists = openLists(ctx.db.sqlite, ctx.host, log, { ...ctx.config, mayRun: (inst) => ctx.host.kindOf(inst.def.id) !== 'sandboxed' })
  let edge: EdgePublisher | null = null
  const feeds: FeedService = new FeedService({
    feeds: ctx.feeds,
    host: ctx.host,
    mixes: new MixStore(ctx.db.sqlite),
    // @NOTE sandboxed agents never run on the serving event loop (a call blocks it up to the agent's deadline):
    // lists built here use their stored scores, and a refresh worker completes them
    ...lists,
    log,
    cacheTtlMs: ctx.config.cacheTtlMs,
    graph: new FollowGraph(ctx.db.sqlite),
    interactions: new InteractionStore(ctx.db.sqlite, { maxPerFeed: ctx.config.feedbackPerFeed }),
    refreshQueue: {
      async request(feed, mix, subscriber, { complete }) {
        const job: RefreshJob = { feed: feed.uri, fingerprint: mix.fingerprint, agents: mix.agents, subscriber, ...(complete ? { complete } : {}) }
        await withTimeout(
          refreshQueue.add('refresh', job, {
            jobId: jobId(complete ? 'rfc' : 'rf', listKey(mix, subscriber), feed.rkey),
            removeOnComplete: true,
            removeOnFail: true,
            attempts: 1,
          }),
          1000,
        )
      },
    },
    instances: { register: (mix) => withTimeout(registry.register(mix.entries.map((e) => e.inst)), 1000) },
    onServed: (contexts) => usage.served(contexts),
    onCacheLookup: ops.cacheLookup,
    readerFilter: ReaderFilter.of(ctx.db.sqlite),
    onReader: (did) => readers.backfill.seen(did),
    previewCandidates: ctx.config.previewCandidates,
    previewQueue: ctx.config.previewQueue,
    cursorSecret,
    onReaderChanged: (did, what, feed) => edge?.readerChanged(did, what, feed),
  })
  if (ctx.config.edgePublish) {
    edge = new EdgePublisher({
      feeds,
      pages: lists.pages,
      readerFilter: ReaderFilter.of(ctx.db.sqlite),
      changes: new ChangeLogRepository(ctx.db.sqlite),
      usage: new UsageRepository(ctx.db.sqlite),
      redis,
      // @NOTE blocking reads hold their connection: they get one of their own
      blocking: ctx.redis(),
      queuePrefix: ctx.config.queuePrefix,
      snapshotTtlMs: ctx.config.snapshotTtlMs,
      cursorSecret,
      log: log.child({ part: 'edge' }),
      leader: opts.leader ?? true,
      timings: opts.edgeTimings,
    }).start()
  }
  // subscriber web pages
  const webCfg = ctx.config
  const handles = new HandleDirectory(identityLookups(ctx.idResolver, webCfg.oauthHandleResolver), log.child({ sub: 'handles' }))
  const web = createWeb({
    feeds,
    host: ctx.host,
    usage,
    sessions: new WebSessionStore(ctx.db.sqlite),
    posts: new PostReader(ctx.db.sqlite),
    log: log.child({ sub: 'web' }),
    version: ctx.version,
    serviceDid: ctx.config.serviceDid,
    publicUrl: ctx.config.publicUrl,
    cookieSecret: webCfg.cookieSecret,
    handles,
    oauth: {
      publicUrl: ctx.config.publicUrl,
      port: ctx.config.port,
      plcUrl: ctx.config.plcUrl,
      allowHttp: ctx.config.allowInsecureHttp,
      handleResolver: webCfg.oauthHandleResolver,
    },
  })
  const auth = new Authenticator(ctx.config.serviceDid, ctx.idResolver, log, ctx.config.tokenMaxLifetimeS, { verifyThread: ctx.config.verifyThread })
  const app = createApp({
    config: ctx.config,
    feeds,
    auth,
    lexicons: loadSkysiftLexicons(),
    log,
    version: ctx.version,
    agents: {
      host: ctx.host,
      store: agents.store!,
      states: agents.states,
      usage,
      changed: () => agents.syncNow(),
      allowPrivate: ctx.config.allowPrivateAgents,
    },
    adminToken: ctx.config.adminToken,
    ops,
    web: web.app,
    notFoundPage: web.notFound,
    ingest: ingestHealthReader(() => ingestOf(ctx), redis, ctx.config.queuePrefix),
    submitLimits: { perAuthorPerHour: ctx.config.submitPerAuthorPerHour, perHour: ctx.config.submitPerHour },
    // @NOTE with several serving processes the budget is one for all of them (kept in Redis)
    ...(ctx.config.serveProcesses > 1
      ? {
          submitBudget: new SharedRateBudget(
            redis,
            `${ctx.config.queuePrefix}:submit`,
            { perKey: ctx.config.submitPerAuthorPerHour, total: ctx.config.submitPerHour, windowMs: 3_600_000 },
            log,
          ),
        }
      : {}),
    health: [
      { name: 'sqlite', check: () => ctx.db.ping() },
      {
        name: 'redis',
        check: () => withTimeout(redis.ping(), 1000).then(() => {}),
      },
    ],
  })
  if (!ctx.config.adminToken) log.info('SKYSIFT_ADMIN_TOKEN is not set: admin routes are off')
  return {
    app,
    feeds,
    edge,
    async close() {
      await edge?.stop()
      clearInterval(flusher)
      await ops.close()
      web.close()
      try {
        usage.flush()
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'usage not saved at close')
      }
      await agents.stop()
      await readers.close()
      await refreshQueue.close()
      await auth.close()
    },
  }
}

/**
 * The HTTP server. `listen.port` overrides SKYSIFT_PORT; with `listen.reusePort` other processes may listen on the
 * same port (see src/serve/processes.ts) and every response names this process; `listen.peer`: one of those other
 * processes (it leaves the once-per-primary parts of edge publishing to the first).
 */
export async function startServe(
  ctx: AppContext,
  listen: { port?: number; reusePort?: boolean; peer?: boolean } = {},
): Promise<Running & { url: string; port: number; feeds: FeedService; server: ServerType }> {
  const log = ctx.log.child({ sub: 'serve' })
  const { app, feeds, close } = createServeApp(ctx, { leader: !listen.peer })
  const wanted = listen.port ?? ctx.config.port
  let server: ServerType
  try {
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = createAdaptorServer({ fetch: listen.reusePort ? withServedBy(app.fetch) : app.fetch, hostname: ctx.config.host })
      s.listen({ port: wanted, host: ctx.config.host, reusePort: listen.reusePort === true }, () => {
        s.off('error', reject)
        resolve(s)
      })
      s.once('error', reject)
    })
  } catch (err) {
    await close()
    throw listenError(err as NodeJS.ErrnoException, ctx.config.host, wanted)
  }
  const port = (server.address() as AddressInfo).port
  log.info({ port, publicUrl: ctx.config.publicUrl, serviceDid: ctx.config.serviceDid, feeds: ctx.feeds.map((f) => f.uri) }, 'serving')
  return {
    name: 'serve',
    url: `http://127.0.0.1:${port}`,
    port,
    feeds,
    server,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      ;(server as { closeIdleConnections?: () => void }).closeIdleConnections?.()
      await closed
      await close()
    },
  }
}

/** A failed listen as an operator reads it: which address, and which setting to change. */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  if (err.code === 'EADDRINUSE') return new Error(`port ${port} is already in use on ${host}: stop what is using it, or set SKYSIFT_PORT to a free port`)
  if (err.code === 'EACCES') return new Error(`no permission to listen on port ${port} (${host}): set SKYSIFT_PORT to a port above 1023`)
  if (err.code === 'EADDRNOTAVAIL') return new Error(`cannot listen on ${host} (not an address of this machine): set SKYSIFT_HOST`)
  return new Error(`cannot listen on ${host}:${port}: ${err.message}`)
}

/** Stops parts in the safe order: ingest first, then workers (finishing their jobs), then the server. */
export async function stopAll(ctx: AppContext, parts: Running[]): Promise<void> {
  const order: string[] = ['ingest', 'score', 'store', 'refresh', 'serve']
  const sorted = [...parts].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
  for (const p of sorted) {
    try {
      await p.stop()
    } catch (err) {
      ctx.log.warn({ part: p.name, err: (err as Error).message }, 'stop failed')
    }
  }
  await ctx.close()
}

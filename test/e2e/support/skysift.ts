import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { readConfig, type Config } from '../../../src/config.ts'
import { AppContext } from '../../../src/context.ts'
import { createLogger, silentLogger } from '../../../src/logger.ts'
import { deleteQueueKeys } from '../../../src/contracts/queues.ts'
import type { ServerType } from '@hono/node-server'
import { startEdge } from '../../../src/edge-runtime.ts'
import { startIngest, startRefresh, startScore, startServe, startStore, stopAll, type Running } from '../../../src/runtime.ts'
import { REDIS_URL, until } from '../../support/resources.ts'
import { freePort, type LocalNetwork, type LocalUser } from './network.ts'

const WARM_UP_SUBJECT = 'did:plc:warmupwarmupwarmupwarmupw'

/** Skysift running in this process against a local network's PDS firehose, with its feeds published by `owner`. */
export interface LocalSkysift {
  ctx: AppContext
  url: string
  serviceDid: string
  /** feed URIs by record key */
  feeds: Record<string, string>
  serve: Awaited<ReturnType<typeof startServe>>
  /** the node the network talks to (the service DID's endpoint): the edge node when started with `edge`, else `serve` */
  front: { url: string; server: ServerType; role: 'primary' | 'edge' }
  ingest: ReturnType<typeof startIngest>
  /** a user's call to one of Skysift's methods, proxied by their PDS (`atproto-proxy: <service did>#bsky_fg`) */
  viaPds(user: LocalUser, nsid: string, opts?: { query?: Record<string, string>; input?: unknown }): Promise<{ status: number; body: Record<string, any> }>
  stop(): Promise<void>
}

/**
 * Starts every stage in this process (serve, store, refresh, score, ingest
 * on the PDS firehose), publishes the feeds as `owner` (unless `publish` is
 * false), and waits until the firehose delivers. SKYSIFT_E2E_LOG=debug (or
 * info/warn) shows Skysift's logs.
 *
 * With `edge`, the stages above run as a primary publishing for edge nodes (SKYSIFT_EDGE_PUBLISH), and an edge node
 * (needing only Redis; its SQLite path is in a folder that does not exist) is the service: the DID document, and so
 * the AppView and every PDS, name the edge's URL; the edge passes what it does not serve itself on to the primary.
 */
export async function startLocalSkysift(
  net: LocalNetwork,
  owner: LocalUser,
  opts: { publish?: boolean; config?: Partial<Config>; edge?: boolean } = {},
): Promise<LocalSkysift> {
  const port = await freePort()
  // the service's port: the edge's when there is one
  const frontPort = opts.edge ? await freePort() : port
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'skysift-e2e-data-'))
  const prefix = `e2e-${randomBytes(6).toString('hex')}`
  const config = readConfig(
    {},
    {
      port,
      host: '127.0.0.1',
      publicUrl: `http://localhost:${frontPort}`,
      serviceDid: `did:web:localhost%3A${frontPort}`,
      edgePublish: opts.edge === true,
      publisherDid: owner.did,
      dbPath: path.join(dataDir, 'skysift.db'),
      queuePrefix: prefix,
      redisUrl: REDIS_URL,
      source: { kind: 'firehose', url: net.pdsWsUrl },
      plcUrl: net.plcUrl,
      allowInsecureHttp: true,
      cacheTtlMs: 500,
      logLevel: process.env.SKYSIFT_E2E_LOG ?? 'silent',
      ...opts.config,
    },
  )
  const ctx = new AppContext(config, process.env.SKYSIFT_E2E_LOG ? createLogger(process.env.SKYSIFT_E2E_LOG) : silentLogger)
  const parts: Running[] = []
  const serve = await startServe(ctx)
  parts.push(serve, startStore(ctx), startRefresh(ctx), startScore(ctx))
  const ingest = startIngest(ctx)
  parts.push(ingest)
  let front: LocalSkysift['front'] = { url: serve.url, server: serve.server, role: 'primary' }
  let edgeCtx: AppContext | null = null
  const edgeParts: Running[] = []
  if (opts.edge) {
    edgeCtx = new AppContext(
      { ...config, port: frontPort, dbPath: path.join(dataDir, 'no-such-folder', 'edge.db'), edgePublish: false, primaryUrl: serve.url },
      ctx.log.child({ node: 'edge' }),
    )
    const edge = await startEdge(edgeCtx)
    edgeParts.push(edge)
    front = { url: edge.url, server: edge.server, role: 'edge' }
  }
  const feeds: Record<string, string> = {}
  for (const f of ctx.feeds) {
    feeds[f.rkey] = f.uri
    if (opts.publish ?? true) await net.publishFeed(owner, f.rkey, config.serviceDid, f.displayName, { description: f.description })
  }
  // no saved cursor, so the firehose starts live: make sure it is connected before anyone writes. A follow is in a
  // collection Skysift reads and is not stored (the owner reads no feed); repeat until one comes through
  await until('the firehose to deliver an event', async () => {
    if (ingest.ingester.stats.received > 0) return true
    await owner.agent.follow(WARM_UP_SUBJECT)
    const by = Date.now() + 2000
    while (Date.now() < by && ingest.ingester.stats.received === 0) await new Promise((r) => setTimeout(r, 100))
    return ingest.ingester.stats.received > 0
  })
  const viaPds: LocalSkysift['viaPds'] = async (user, nsid, opts = {}) => {
    const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : ''
    const res = await user.agent.sessionManager.fetchHandler(`/xrpc/${nsid}${qs}`, {
      method: opts.input === undefined ? 'GET' : 'POST',
      headers: { 'atproto-proxy': `${config.serviceDid}#bsky_fg`, ...(opts.input === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(opts.input === undefined ? {} : { body: JSON.stringify(opts.input) }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, any> }
  }
  return {
    ctx,
    url: `http://localhost:${frontPort}`,
    serviceDid: config.serviceDid,
    feeds,
    serve,
    front,
    ingest,
    viaPds,
    async stop() {
      if (edgeCtx) await stopAll(edgeCtx, edgeParts)
      await stopAll(ctx, parts)
      await rm(dataDir, { recursive: true, force: true })
      await deleteQueueKeys(config.redisUrl, prefix)
    },
  }
}

/**
 * End-to-end test harness: boots a complete local atproto network in-process
 * (PLC + PDS + AppView + bsync + Ozone from @atproto/dev-env) on the local
 * Postgres, plus helpers to create users, publish feed generator records and
 * talk to the AppView as a user.
 *
 * Facts this relies on (proved by test/e2e/support/probe.test.ts):
 * - `TestNetwork.create` needs a Postgres URL and `REDIS_HOST` (asserted but
 *   unused). It creates the schemas `appview_<s>`, `bsync_<s>`, `ozone_<s>`;
 *   `<s>` must match /^[a-z_]+$/i.
 * - The PDS writes its sqlite/actor data and blobs under `os.tmpdir()`, read
 *   once at create time, so TMPDIR is pointed at a per-run folder just for the
 *   duration of `create` and the folder is removed in `close()`.
 * - All services use `http://localhost:<port>` URLs; the PDS firehose is
 *   `ws://localhost:<pdsPort>` (com.atproto.sync.subscribeRepos).
 * - The AppView's dataplane and the PDS resolve `did:web:localhost%3A<port>`
 *   over plain http with no extra configuration (dev-env turns SSRF
 *   protection off / injects globalThis.fetch).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { AtpAgent, asAtprotoProxy } from '@atproto/api'
import { TestNetwork, TestNetworkNoAppView } from '@atproto/dev-env'
import { serve } from '@hono/node-server'
import pg from 'pg'
import { REDIS_URL } from '../../support/resources.ts'

export type { TestNetwork }

export interface LocalUser {
  did: string
  handle: string
  password: string
  /** Logged in on the PDS (credential session). Calls to app.bsky.* are
   * proxied by the PDS to the AppView. */
  agent: AtpAgent
}

export interface FeedOptions {
  description?: string
}

export interface AppviewAgentOptions {
  /**
   * 'pds' (default, the production path): the agent talks to the user's PDS
   *   with `atproto-proxy: <appviewDid>#bsky_appview`; the PDS mints a service
   *   JWT and forwards to the AppView. For app.bsky.feed.getFeed the PDS mints
   *   iss=user, aud=<feed generator DID>, lxm=app.bsky.feed.getFeedSkeleton and
   *   the AppView passes that header through to the feed generator unchanged.
   * 'direct': the agent talks to the AppView URL directly and attaches a fresh
   *   service JWT per request (iss=user, aud=AppView DID, lxm=<called NSID>),
   *   signed with the user's repo key. The AppView forwards THAT token to the
   *   feed generator (aud=AppView DID, lxm=app.bsky.feed.getFeed).
   * 'anonymous': the agent talks to the AppView directly with no auth at all.
   */
  via?: 'pds' | 'direct' | 'anonymous'
}

export interface LocalNetwork {
  network: TestNetwork
  pdsUrl: string
  /** ws://localhost:<pdsPort> — subscribeRepos firehose lives here */
  pdsWsUrl: string
  plcUrl: string
  appviewUrl: string
  appviewDid: string
  ozoneUrl: string
  /** the `<s>` part of appview_<s> / bsync_<s> / ozone_<s> */
  schema: string
  /** per-run folder TMPDIR pointed at while the network was created */
  tmpDir: string
  postgresUrl: string
  /** wall-clock ms spent in TestNetwork.create */
  bootMs: number

  createUser(handleShort: string): Promise<LocalUser>
  /** publishes an app.bsky.feed.generator record under owner's repo pointing
   * at serviceDid, waits for AppView indexing, returns the at-uri */
  publishFeed(owner: LocalUser, rkey: string, serviceDid: string, displayName: string, opts?: FeedOptions): Promise<string>
  /** an AtpAgent whose app.bsky.* calls are answered by the AppView as `user` */
  appviewAgentFor(user: LocalUser | null, opts?: AppviewAgentOptions): AtpAgent
  /** com.atproto.server.getServiceAuth on the PDS, as `user` */
  getServiceAuth(user: LocalUser, aud: string, lxm: string | null, expSeconds?: number): Promise<string>
  processAll(): Promise<void>
  close(): Promise<void>
}

export interface StartOptions {
  /** default: $DB_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/postgres */
  postgresUrl?: string
  /** default: $REDIS_HOST or the host of the tests' REDIS_URL (only asserted, never used) */
  redisHost?: string
  /** drop leftovers (schemas + tmp folders) of crashed runs older than this;
   * default 6 h, 0 disables */
  sweepOlderThanMs?: number
}

const SCHEMA_PREFIX = 'skysift_test_' // letters + _ only: 'e2e' would be rejected
const TMP_PREFIX = 'skysift-e2e-'
const SUB_SCHEMAS = ['appview_', 'bsync_', 'ozone_'] as const
const USER_PASSWORD = 'hunter2-e2e'

/** a did:web for a service listening on http://localhost:<port> */
export const localDidWeb = (port: number): string => `did:web:localhost%3A${port}`

/** base-26 lowercase letters (schema names must be [a-z_]) */
const toLetters = (n: number): string => {
  let out = ''
  do {
    out = String.fromCharCode(97 + (n % 26)) + out
    n = Math.floor(n / 26)
  } while (n > 0)
  return out
}
const fromLetters = (s: string): number => [...s].reduce((acc, ch) => acc * 26 + (ch.charCodeAt(0) - 97), 0)
const randomLetters = (len: number): string => [...randomBytes(len)].map((b) => String.fromCharCode(97 + (b % 26))).join('')

/** skysift_test_<creation time, seconds, in letters>_<random> */
const newSchemaName = (): string => `${SCHEMA_PREFIX}${toLetters(Math.floor(Date.now() / 1000))}_${randomLetters(6)}`

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function dropSchemas(url: string, schema: string): Promise<void> {
  await withPg(url, async (c) => {
    for (const p of SUB_SCHEMAS) {
      await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(p + schema)} CASCADE`)
    }
  })
}

/** best effort: remove schemas/tmp folders left by runs that died hard */
async function sweepStale(url: string, tmpRoot: string, olderThanMs: number): Promise<void> {
  const cutoffSec = (Date.now() - olderThanMs) / 1000
  try {
    await withPg(url, async (c) => {
      const { rows } = await c.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname ~ $1`, [
        `^(${SUB_SCHEMAS.join('|')})${SCHEMA_PREFIX}[a-z]+_[a-z]+$`,
      ])
      for (const { nspname } of rows) {
        const ts = nspname.slice(nspname.indexOf(SCHEMA_PREFIX) + SCHEMA_PREFIX.length).split('_')[0]
        if (ts && fromLetters(ts) < cutoffSec) {
          await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(nspname)} CASCADE`)
        }
      }
    })
  } catch {
    // the real start will report a broken database
  }
  try {
    for (const name of await readdir(tmpRoot)) {
      if (!name.startsWith(TMP_PREFIX)) continue
      const full = path.join(tmpRoot, name)
      const st = await stat(full).catch(() => null)
      if (st && st.mtimeMs < Date.now() - olderThanMs) {
        await rm(full, { recursive: true, force: true })
      }
    }
  } catch {
    // ignore
  }
}

/** serialises the TMPDIR swap: os.tmpdir() is process-global */
let createLock: Promise<unknown> = Promise.resolve()

export async function startLocalNetwork(opts: StartOptions = {}): Promise<LocalNetwork> {
  const postgresUrl = opts.postgresUrl ?? process.env.DB_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  process.env.REDIS_HOST ??= opts.redisHost ?? new URL(REDIS_URL).host

  const tmpRoot = os.tmpdir()
  const sweepMs = opts.sweepOlderThanMs ?? 6 * 60 * 60 * 1000
  if (sweepMs > 0) await sweepStale(postgresUrl, tmpRoot, sweepMs)

  const schema = newSchemaName()
  await mkdir(tmpRoot, { recursive: true })
  const tmpDir = await mkdtemp(path.join(tmpRoot, TMP_PREFIX))

  let network: TestNetwork | undefined
  let bootMs = 0
  const run = createLock.then(async () => {
    const prevTmp = process.env.TMPDIR
    process.env.TMPDIR = tmpDir
    const t0 = performance.now()
    try {
      network = await TestNetwork.create({ dbPostgresUrl: postgresUrl, dbPostgresSchema: schema })
    } finally {
      bootMs = performance.now() - t0
      if (prevTmp === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = prevTmp
    }
  })
  createLock = run.catch(() => undefined)
  try {
    await run
  } catch (err) {
    // TestNetwork.create does not tear down what it already started; servers
    // started before the failure die with the (vitest worker) process.
    await Promise.allSettled([dropSchemas(postgresUrl, schema), rm(tmpDir, { recursive: true, force: true })])
    throw err
  }
  const net = network!

  const pdsUrl = net.pds.url
  const appviewUrl = net.bsky.url
  const appviewDid = net.bsky.ctx.cfg.serverDid

  const createUser = async (handleShort: string): Promise<LocalUser> => {
    const handle = handleShort.includes('.') ? handleShort : `${handleShort}.test`
    const agent = new AtpAgent({ service: pdsUrl })
    await agent.createAccount({
      handle,
      email: `${handle.replace(/\./g, '-')}@test.com`,
      password: USER_PASSWORD,
    })
    const did = agent.session!.did
    return { did, handle, password: USER_PASSWORD, agent }
  }

  const publishFeed: LocalNetwork['publishFeed'] = async (owner, rkey, serviceDid, displayName, o) => {
    const res = await owner.agent.com.atproto.repo.createRecord({
      repo: owner.did,
      collection: 'app.bsky.feed.generator',
      rkey,
      record: {
        $type: 'app.bsky.feed.generator',
        did: serviceDid,
        displayName,
        ...(o?.description ? { description: o.description } : {}),
        createdAt: new Date().toISOString(),
      },
    })
    // both the PDS getFeed handler (repo.getRecord on the AppView) and the
    // AppView's own getFeed need the record indexed
    await net.processAll()
    return res.data.uri
  }

  const appviewAgentFor: LocalNetwork['appviewAgentFor'] = (user, o = {}) => {
    const via = o.via ?? (user ? 'pds' : 'anonymous')
    if (via === 'pds') {
      if (!user) throw new Error("via 'pds' needs a user")
      const agent = user.agent.clone()
      agent.configureProxy(asAtprotoProxy(`${appviewDid}#bsky_appview`))
      return agent
    }
    if (via === 'anonymous') return new AtpAgent({ service: appviewUrl })
    if (!user) throw new Error("via 'direct' needs a user")
    const authedFetch: typeof fetch = async (input, init) => {
      const req = new Request(input, init)
      const nsid = new URL(req.url).pathname.replace(/^\/xrpc\//, '')
      const { authorization } = await net.serviceHeaders(user.did, nsid, appviewDid)
      const headers = new Headers(req.headers)
      headers.set('authorization', authorization)
      return fetch(new Request(req, { headers }))
    }
    return new AtpAgent({ service: appviewUrl, fetch: authedFetch })
  }

  const getServiceAuth: LocalNetwork['getServiceAuth'] = async (user, aud, lxm, expSeconds) => {
    const res = await user.agent.com.atproto.server.getServiceAuth({
      aud,
      ...(lxm ? { lxm } : {}),
      ...(expSeconds ? { exp: Math.floor(Date.now() / 1000) + expSeconds } : {}),
    })
    return res.data.token
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const errors: unknown[] = []
      try {
        await net.close()
      } catch (err) {
        errors.push(err)
      }
      try {
        await dropSchemas(postgresUrl, schema)
      } catch (err) {
        errors.push(err)
      }
      try {
        await rm(tmpDir, { recursive: true, force: true })
      } catch (err) {
        errors.push(err)
      }
      if (errors.length === 1) throw errors[0]
      if (errors.length > 1) throw new AggregateError(errors, 'LocalNetwork.close failed')
    })())

  return {
    network: net,
    pdsUrl,
    pdsWsUrl: pdsUrl.replace(/^http/, 'ws'),
    plcUrl: net.plc.url,
    appviewUrl,
    appviewDid,
    ozoneUrl: net.ozone.url,
    schema,
    tmpDir,
    postgresUrl,
    bootMs,
    createUser,
    publishFeed,
    appviewAgentFor,
    getServiceAuth,
    processAll: () => net.processAll(),
    close,
  }
}

export interface LocalHttpServer {
  server: Server
  port: number
  /** http://localhost:<port> */
  url: string
  /** did:web:localhost%3A<port> */
  did: string
  close(): Promise<void>
}

/**
 * Serves a fetch handler (e.g. `honoApp.fetch`) on a free port of 127.0.0.1.
 * Use `url` / `did` (both say "localhost", which is what did:web needs).
 */
export async function listenLocal(
  fetchHandler: (req: Request) => Response | Promise<Response>,
  opts: { hostname?: string; port?: number } = {},
): Promise<LocalHttpServer> {
  const hostname = opts.hostname ?? '127.0.0.1'
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: fetchHandler, hostname, port: opts.port ?? 0 }, () => resolve(s as Server)) as Server
    s.once('error', reject)
  })
  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    server,
    port,
    url: `http://localhost:${port}`,
    did: localDidWeb(port),
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      })),
  }
}

/** a did:web document advertising a BskyFeedGenerator at `endpoint` */
export const feedGenDidDoc = (did: string, endpoint: string) => ({
  '@context': ['https://www.w3.org/ns/did/v1'],
  id: did,
  service: [{ id: '#bsky_fg', type: 'BskyFeedGenerator', serviceEndpoint: endpoint }],
})

/** decodes (does NOT verify) a JWT's payload */
export const decodeJwtPayload = (jwt: string): Record<string, unknown> => {
  const part = jwt.replace(/^Bearer\s+/i, '').split('.')[1]
  if (!part) throw new Error('not a JWT')
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
}

/** a TCP port that was free on 127.0.0.1 a moment ago (for servers that must know their URL before they listen) */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

/**
 * PLC + PDS only (no AppView, no PostgreSQL; ~0.2 s), with the PDS's files
 * in a folder of its own (`dir`, usable for the test's files too), which
 * close() removes with the network.
 */
export async function startPdsOnly(label: string): Promise<{ net: TestNetworkNoAppView; dir: string; close: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `skysift-${label}-`))
  const prevTmp = process.env.TMPDIR
  process.env.TMPDIR = dir
  let net: TestNetworkNoAppView
  try {
    net = await TestNetworkNoAppView.create({})
  } finally {
    if (prevTmp === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = prevTmp
  }
  return {
    net,
    dir,
    async close() {
      await net.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startExampleAgent } from '../examples/remote-agent/server.ts'
import { agentTest, formatReport, histogram, scaffoldAgent } from '../src/commands/agent.ts'
import { AppContext } from '../src/context.ts'
import type { PostEvent } from '../src/contracts/events.ts'
import { syntheticJsonl } from '../src/ingest/synthetic.ts'
import { silentLogger } from '../src/logger.ts'
import { agentSync, createServeApp, startRefresh } from '../src/runtime.ts'
import { scoreBatch } from '../src/score/score-stage.ts'
import type { AgentPost } from '../src/score/sdk.ts'
import { BatchWriter, scoreEntries } from '../src/store/writer.ts'
import { startIdentities, type TestUser } from './support/identity.ts'
import { queuePrefix, tempDir, testConfig, waitFor } from './support/resources.ts'
import { postEvent } from './support/builders.ts'

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'agents')
const SERVICE = 'did:web:feeds.test'
const ADMIN = 'admin-token-0123456789abcdef'
const author = 'did:plc:erinerinerinerinerinerin'

const basePost: AgentPost = {
  uri: 'at://did:plc:x/app.bsky.feed.post/1',
  author: 'did:plc:x',
  createdAt: 0,
  text: '',
  langs: [],
  tags: [],
  labels: [],
  embed: null,
  quote: null,
  replyRoot: null,
  replyParent: null,
  likeCount: 0,
  repostCount: 0,
}
let n = 0
const post = (text: string, p: Partial<PostEvent> = {}): PostEvent => postEvent({ author, text, minutesAgo: ++n, ...p })

describe('agent platform: catalog, submissions, approval, remote agents (real SQLite, Redis, HTTP)', () => {
  let ctx: AppContext
  let app: Hono
  let users: Record<string, TestUser>
  const cleanups: (() => unknown)[] = []

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const ids = await startIdentities(['author', 'reader'])
    users = ids.users
    cleanups.push(ids.close)
    ctx = new AppContext(
      testConfig({
        dbPath: path.join(t.dir, 'skysift.db'),
        queuePrefix: q.prefix,
        serviceDid: SERVICE,
        allowInsecureHttp: true,
        adminToken: ADMIN,
        allowPrivateAgents: true,
      }),
      silentLogger,
    )
    const served = createServeApp(ctx)
    app = served.app
    cleanups.push(() => ctx.close(), served.close)
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const call = async (method: 'GET' | 'POST', url: string, opts: { token?: string; admin?: boolean; body?: unknown } = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    if (opts.admin) headers.authorization = `Bearer ${ADMIN}`
    const res = await app.request(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
    return { status: res.status, body: (await res.json()) as any }
  }
  const catalog = async () => (await call('GET', '/xrpc/app.skysift.agent.listAgents')).body.agents as any[]

  it('lists every built-in agent with its options schema, kind, status and usage', async () => {
    const agents = await catalog()
    const ids = agents.map((a) => a.id)
    for (const id of ['recency', 'keyword', 'language', 'engagement', 'hashtags', 'media', 'post-type', 'author-diversity', 'calm', 'labels'])
      expect(ids).toContain(id)
    const kw = agents.find((a) => a.id === 'keyword')
    expect(kw).toMatchObject({
      kind: 'builtin',
      status: 'active',
      needs: ['text'],
      options: { type: 'object', properties: { include: { type: 'array' }, requireMatch: { type: 'boolean' } } },
    })
    // the shipped feeds use keyword in their fixed or default mixes
    expect(kw.usage.feedDefaults).toBeGreaterThan(0)
  })

  it('counts mixes that use an agent and the items it shaped', async () => {
    const feed = ctx.feeds[1].uri
    const r = await call('POST', '/xrpc/app.skysift.feed.putMix', {
      token: await users.reader.token(SERVICE, 'app.skysift.feed.putMix'),
      body: {
        feed,
        agents: [
          { agent: 'calm', weight: 40 },
          { agent: 'recency', weight: 60 },
        ],
      },
    })
    expect(r.status).toBe(200)
    new BatchWriter(ctx.db.sqlite).write({
      id: 'x',
      events: [post('New space telescope results, what a wonderful day'), post('the space probe failed, terrible news')],
      scores: [],
      eventTime: Date.now(),
    })
    const page = await call('GET', `/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(feed)}`, {
      token: await users.reader.token(SERVICE, 'app.bsky.feed.getFeedSkeleton'),
    })
    expect(page.body.feed).toHaveLength(2)
    const calm = (await catalog()).find((a) => a.id === 'calm')
    expect(calm.usage.mixes).toBe(1)
    // calm lifted the warm post; the gloomy one is calm's minimum (normalized to 0): not moved
    expect(calm.usage.itemsShaped).toBe(1)
  })

  it('takes a sandboxed agent from an author, holds it for review, and serves it once an admin approves', async () => {
    const source = fs.readFileSync(path.join(FIXTURES, 'good-agent.js'), 'utf8')
    const id = /id:\s*'([^']+)'/.exec(source)![1]
    const token = await users.author.token(SERVICE, 'app.skysift.agent.submitAgent')
    const sub = await call('POST', '/xrpc/app.skysift.agent.submitAgent', { token, body: { source } })
    expect(sub.status, JSON.stringify(sub.body)).toBe(200)
    expect(sub.body).toMatchObject({ id, status: 'pending' })
    // pending agents are not in the catalog, and readers cannot use them yet
    expect((await catalog()).map((a) => a.id)).not.toContain(id)
    expect((await call('POST', '/xrpc/app.skysift.agent.approve', { admin: true })).status).toBe(404)
    expect((await call('GET', '/admin/api/agents')).status).toBe(401)
    const list = await call('GET', '/admin/api/agents', { admin: true })
    expect(list.body.agents.find((a: any) => a.id === id)).toMatchObject({ status: 'pending', submittedBy: users.author.did })
    const ok = await call('POST', `/admin/api/agents/${id}/approve`, { admin: true, body: { note: 'reviewed' } })
    expect(ok.status).toBe(200)
    const listed = (await catalog()).find((a) => a.id === id)
    expect(listed).toMatchObject({ kind: 'sandboxed', status: 'active' })
    const put = await call('POST', '/xrpc/app.skysift.feed.putMix', {
      token: await users.reader.token(SERVICE, 'app.skysift.feed.putMix'),
      body: { feed: ctx.feeds[0].uri, agents: [{ agent: id, weight: 50 }] },
    })
    expect(put.status, JSON.stringify(put.body)).toBe(200)

    // the serving process never runs it: the first list has no opinion of it, and a refresh worker completes the list
    const posts = [post('nothing about the weather'), post('a blue sky, a grey sky and a red sky at night'), post('sky')]
    new BatchWriter(ctx.db.sqlite).write({ id: 'sandboxed-posts', events: posts, scores: [], eventTime: Date.now() })
    const ours = new Set(posts.map((p) => p.uri))
    const read = async () =>
      (
        (
          await call('GET', `/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(ctx.feeds[0].uri)}`, {
            token: await users.reader.token(SERVICE, 'app.bsky.feed.getFeedSkeleton'),
          })
        ).body.feed.map((i: any) => i.post) as string[]
      ).filter((u) => ours.has(u))
    expect(await read()).toEqual(posts.map((p) => p.uri)) // newest first: the agent gave no scores yet
    expect(ctx.host.stats.get(id)?.calls ?? 0).toBe(0)
    const worker = new AppContext(ctx.config, silentLogger)
    cleanups.push(() => worker.close())
    const refresh = startRefresh(worker)
    cleanups.push(() => refresh.stop())
    await waitFor(async () => (await read())[0] === posts[1].uri, 'the refresh worker to rank with the sandboxed agent', 15_000, 200)
    expect(await read()).toEqual([posts[1].uri, posts[2].uri, posts[0].uri])
    expect(worker.host.stats.get(id)?.calls).toBeGreaterThan(0)
    expect(ctx.host.stats.get(id)?.calls ?? 0).toBe(0)
  })

  it('refuses a submission that does not load, saying why', async () => {
    const token = await users.author.token(SERVICE, 'app.skysift.agent.submitAgent')
    const bad = await call('POST', '/xrpc/app.skysift.agent.submitAgent', {
      token,
      body: { source: fs.readFileSync(path.join(FIXTURES, 'wrong-api.js'), 'utf8') },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toBe('InvalidAgent')
    expect(bad.body.message).toMatch(/SDK API 99/)
    const shadow = await call('POST', '/xrpc/app.skysift.agent.submitAgent', {
      token,
      body: {
        source: "export default { id: 'recency', version: '1', title: 't', description: 'd', api: 1, needs: [], scoreBatch(p) { return p.map(() => 0) } }",
      },
    })
    expect(shadow.status).toBe(400)
    expect(shadow.body.message).toMatch(/built-in/)
    expect((await call('POST', '/xrpc/app.skysift.agent.submitAgent', { body: { source: 'x' } })).status).toBe(401)
  })

  it('registers a remote agent, and score workers call it once approved', async () => {
    const remote = await startExampleAgent({ port: 0, host: '127.0.0.1' })
    cleanups.push(remote.close)
    const add = await call('POST', '/admin/api/agents/remote', { admin: true, body: { url: remote.url, allowPrivateNetwork: true } })
    expect(add.status, JSON.stringify(add.body)).toBe(200)
    const id = add.body.id as string
    expect(add.body.status).toBe('pending')
    await call('POST', `/admin/api/agents/${id}/approve`, { admin: true })
    expect((await catalog()).find((a) => a.id === id)).toMatchObject({ kind: 'remote', status: 'active' })

    // a score worker in another process learns of it through Redis
    const worker = new AppContext(ctx.config, silentLogger)
    cleanups.push(() => worker.close())
    const sync = agentSync(worker, 'redis', 200)
    cleanups.push(() => sync.stop())
    await waitFor(() => worker.host.kindOf(id) === 'remote', 'the worker to load the remote agent')
    const inst = worker.host.instance(id, {})
    const batch = await scoreBatch(worker.host, [inst], {
      id: 'j1',
      source: 's',
      eventTime: Date.now(),
      events: [post('Does anyone know a good telescope?'), post('I bought a telescope.')],
    })
    const scores = [...scoreEntries(batch)].filter(([, key]) => key === inst.key).map(([, , v]) => v)
    expect(scores).toHaveLength(2)
    expect(scores[0]).toBeGreaterThan(scores[1] as number)

    // Redis restarted empty: the worker keeps the agent, and the store side publishes the list again
    const key = `${ctx.config.queuePrefix}:agents`
    await ctx.redis().del(key)
    await sync.syncNow()
    expect(worker.host.kindOf(id)).toBe('remote')
    await agentSync(ctx, 'store').syncNow()
    expect(await ctx.redis().hexists(key, id)).toBe(1)
    await sync.syncNow()
    expect(worker.host.kindOf(id)).toBe('remote')
  })
})

describe('installed agents', () => {
  it('loads modules the admin lists, checks their SDK version, and shows them in the catalog', async () => {
    const t = tempDir()
    try {
      const config = testConfig({ dbPath: path.join(t.dir, 'skysift.db'), installedAgents: [path.join(FIXTURES, '..', 'installed', 'link-lover.js')] })
      const ctx = await AppContext.create(config, silentLogger)
      try {
        expect(ctx.host.kindOf('link-lover')).toBe('installed')
        const inst = ctx.host.instance('link-lover', { bonus: 3 })
        expect(ctx.host.run(inst, [{ ...basePost, embed: 'external' }, basePost], 0)).toEqual([3, 0])
        expect(() => ctx.host.instance('link-lover', { bonus: -1 })).toThrow(/options\.bonus/)
        expect(ctx.host.describe().find((a) => a.id === 'link-lover')).toMatchObject({
          kind: 'installed',
          author: 'did:plc:linkloverauthorexampleabc',
          version: '2.0.0',
        })
      } finally {
        await ctx.close()
      }
      const bad = testConfig({ dbPath: path.join(t.dir, 'skysift.db'), installedAgents: [path.join(FIXTURES, '..', 'installed', 'old-api.js')] })
      await expect(AppContext.create(bad, silentLogger)).rejects.toThrow(/targets SDK API 0; this host speaks 1/)
      const missing = testConfig({ dbPath: path.join(t.dir, 'skysift.db'), installedAgents: ['skysift-agent-that-does-not-exist'] })
      await expect(AppContext.create(missing, silentLogger)).rejects.toThrow(/cannot load/)
    } finally {
      t.cleanup()
    }
  })
})

describe('author tooling', () => {
  let dir: string
  let replay: string
  let cleanup: () => void

  beforeAll(() => {
    const t = tempDir()
    dir = t.dir
    cleanup = t.cleanup
    replay = path.join(dir, 'events.jsonl')
    fs.writeFileSync(replay, syntheticJsonl({ count: 5000, seed: 11 }))
  })
  afterAll(() => cleanup())

  it('agent test runs a built-in on a replay and reports what it kept, dropped, and cost', async () => {
    const r = await agentTest('language', { replay, options: { langs: ['ja'] } })
    expect(r.events).toBe(5000)
    expect(r.posts).toBeGreaterThan(100)
    expect(r.kept + r.dropped + r.noOpinion).toBe(r.posts)
    expect(r.kept).toBeGreaterThan(0)
    expect(r.dropped).toBeGreaterThan(r.kept) // most synthetic posts are not Japanese
    expect(r.top.length).toBeLessThanOrEqual(20)
    expect(r.costUsPerPost).toBeGreaterThan(0)
    const text = formatReport(r)
    expect(text).toMatch(/posts seen\s+\d+/)
    expect(text).toMatch(/top \d+/)
  })

  it('agent test runs an uploaded file exactly as the sandbox runs it', async () => {
    const r = await agentTest(path.join(FIXTURES, 'good-agent.js'), { replay, sandbox: true })
    expect(r.agent.kind).toBe('sandboxed')
    expect(r.posts).toBeGreaterThan(100)
    expect(r.strikes).toBe(0)
    const hostile = await agentTest(path.join(FIXTURES, 'infinite-loop.js'), { replay, sandbox: true })
    expect(hostile.strikes).toBeGreaterThan(0)
    expect(hostile.noOpinion).toBe(hostile.posts)
  })

  it('refuses bad options with the field named', async () => {
    await expect(agentTest('keyword', { replay, options: { include: 'cats' } })).rejects.toThrow(/^bad --options: include: /)
  })

  it('agent new scaffolds an agent that loads in the sandbox and a test that passes', async () => {
    const [file, test] = scaffoldAgent('ask-me', dir)
    const r = await agentTest(file, { replay, sandbox: true })
    expect(r.agent.id).toBe('ask-me')
    expect(r.strikes).toBe(0)
    const out = execFileSync(process.execPath, ['--test', test], { cwd: dir, encoding: 'utf8' })
    expect(out).toMatch(/pass 1/)
    expect(() => scaffoldAgent('ask-me', dir)).toThrow(/exists/)
  })

  it('builds an equal-width score histogram', () => {
    expect(histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 10], 5).map((h) => h.count)).toEqual([2, 2, 2, 2, 2])
    expect(histogram([3, 3], 4)).toEqual([{ from: 3, to: 3, count: 2 }])
  })
})
